"""Loaders for the twelve Fine-tune-CoT benchmarks, read from their public raw files.

Sources (each file pinned to a commit and checked against its SHA-256, or git blob id):

- ``kojima-takeshi188/zero_shot_cot`` ``dataset/``: SingleEq, AddSub, MultiArith, SVAMP, AQuA
  (test), BIG-bench Date Understanding and Tracking Shuffled Objects (three objects), Coin
  Flip, Last Letters, CommonsenseQA (train, dev) and StrategyQA;
- ``openai/grade-school-math``: GSM8K train and test;
- ``google-deepmind/AQuA``: AQuA train (97,467 questions; Kojima et al. ship only the test);
- ``itsnamgyu/reasoning-teacher`` ``data/split/<key>__default.json``: the published train/test
  index lists of Fine-tune-CoT (Ho et al. 2023).

Numbering. ``examples[i]`` is reasoning-teacher sample index ``i``: the examples of each raw
file in file order, and for the datasets made of two files, the first file then the second:
GSM8K train then test, CommonsenseQA train then dev, AQuA train then test.

Question text. Questions are worded exactly as Kojima et al.'s ``data_reader`` builds them (the
prompts behind the published zero-shot-CoT teacher completions): choice datasets get
``" Answer Choices: (A) ... (B) ..."`` after the stem (Tracking Shuffled Objects:
``" \\nWhich choice is true ? Answer Choices: ..."``); Date Understanding's options are shuffled
as Kojima et al. shuffled them (Python's ``random`` seeded with 1, three shuffles per question,
questions in file order); SVAMP joins body and question. AQuA's option texts keep Kojima et
al.'s spacing around parentheses (``5(√3 + 1)`` reads ``5 (√3 + 1)``), with runs of spaces
collapsed. ``choices`` holds the option texts as the question shows them (AQuA: as published).

Answers are normalised with :func:`cotdistill.answers.normalize_gold` for the dataset's answer
type; choice answers are letters. Gold rationales are kept where a dataset publishes one: GSM8K
(the solution before ``####``, calculator annotations ``<<...>>`` removed), AQuA and StrategyQA.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cotdistill.answers import normalize_gold
from cotdistill.catalog import DATASETS
from cotdistill.datasets import PublishedDataset, RawExample
from cotdistill.datasets.sources import FileSource, RemoteFile
from cotdistill.errors import CotdistillError

Reader = Callable[[FileSource], list[RawExample]]
Loader = Callable[[FileSource], PublishedDataset]


@dataclass(frozen=True)
class _Repository:
    owner: str
    name: str
    revision: str

    def file(self, path: str, sha256: str) -> RemoteFile:
        return RemoteFile(self.owner, self.name, self.revision, path, f"sha256:{sha256}")


KOJIMA = _Repository(
    "kojima-takeshi188", "zero_shot_cot", "5ef330fcdeec0cd26aee27943504f91f8ec1c33c"
)
GRADE_SCHOOL_MATH = _Repository(
    "openai", "grade-school-math", "3101c7d5072418e28b9008a6636bde82a006892c"
)
REASONING_TEACHER = _Repository(
    "itsnamgyu", "reasoning-teacher", "a2ca4d28d3bbabbd77106b76d06885d1a5eac0d9"
)
DEEPMIND_AQUA = _Repository("google-deepmind", "AQuA", "26b64ed1f22208c6742f47df547dfd65088ec30d")


def _kojima(path: str, sha256: str) -> RemoteFile:
    return KOJIMA.file(f"dataset/{path}", sha256)


def _gsm8k_file(split: str, sha256: str) -> RemoteFile:
    return GRADE_SCHOOL_MATH.file(f"grade_school_math/data/{split}.jsonl", sha256)


SINGLE_EQ = _kojima(
    "SingleEq/questions.json", "051507bd2b489c257057b485774a83d2710c23a4bc0f4a58e1822ae2773ef05e")
ADDSUB = _kojima(
    "AddSub/AddSub.json", "21930fa90385c72b5a15f4b9a4dda27276b889ae9ff44285505cdd9fa0a20df8")
MULTIARITH = _kojima(
    "MultiArith/MultiArith.json", "dc9db1b6cc68b1ecc2dec830d15aaf8c9a0932aa31d5ffce88ef3628179d36f4")
SVAMP = _kojima(
    "SVAMP/SVAMP.json", "5be77703a6d891ae476d7c082787ad361392aa02453b132516cdd5f4e7934e3e")
AQUA_TEST = _kojima(
    "AQuA/test.json", "de41581881ef95c5588c44ddc701c77fd480839241dd422a0d181262af24520c")
DATE = _kojima(
    "Bigbench_Date/task.json", "ff716f0e399109146db3a998281c39954907b78268a9b633a95582d63847822f")
SHUFFLED_OBJECTS = _kojima(
    "Bigbench_object_tracking/task.json",
    "74b74d3c8827c0387a3f24ee9efa7edd90b2d53af3daacb9961341af66f750a0")
COIN_FLIP = _kojima(
    "coin_flip/coin_flip.json", "68cf201737a1463ef6bed5419622805a8934d92bff6a28a9dfbf83be3135ba5a")
LAST_LETTERS = _kojima(
    "last_letters/last_letters.json",
    "60e8d092d0a6423d3256e87e0c249b69aefea4cd27985082095fa4e93931fb02")
CSQA_TRAIN = _kojima(
    "CommonsenseQA/train_rand_split.jsonl",
    "58ffa3c8472410e24b8c43f423d89c8a003d8284698a6ed7874355dedd09a2fb")
CSQA_DEV = _kojima(
    "CommonsenseQA/dev_rand_split.jsonl",
    "3210497fdaae614ac085d9eb873dd7f4d49b6f965a93adadc803e1229fd8a02a")
STRATEGY_QA = _kojima(
    "StrategyQA/task.json", "60af9081fed20102fd8bb1e02dc7d9f12238efcba33e4c1a56b4d61cb6409803")
GSM8K_TRAIN = _gsm8k_file("train", "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465")
GSM8K_TEST = _gsm8k_file("test", "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14")
# Not mirrored: pinned by the blob id ``git ls-tree`` shows at the revision above.
AQUA_TRAIN = RemoteFile(
    DEEPMIND_AQUA.owner, DEEPMIND_AQUA.name, DEEPMIND_AQUA.revision, "train.json",
    "gitblob:a805bddefde8d70fdb66ff7ab85a1999bdc3eece",
)

_SPLIT_SHA256 = {
    "single_eq": "d46feb082615045ea0909c5ed062ef85f29ba95223cbca39e0bfbb1ad1b5e1b7",
    "addsub": "1a6f70a39554084978a44439db0b661b039ce4dd2c09572d2ff9f44f5ef668d0",
    "multiarith": "f2f47aeb18026cb3d1909b38b8828693aeaf624af3282d8021dbee32008a1409",
    "gsm8k": "cf0f484fcaa270ff33f4ce00bff3f7e1f7f30b3e3bc76d0abcb74c22a6e9a6e0",
    "aqua": "8f6a271a99d34bc1fdf062672088eb17f7f782d86c60d9a709f06b6b8144ff6d",
    "svamp": "fae6cc3a5c50952da78b66991182be507c8585e6a59954e03bd997488608ab1f",
    "date_understanding": "5fbfdd1f0db941dce6accd7f43316eda2a2254f3a80f9a3a045f5a19bfb04578",
    "tracking_shuffled_objects": "6f2a4637d6e0692297e5eaa66bf53518445e1fbae1d94f28daae0040b7a1156a",
    "last_letter_concatenation": "a5f7ffe4a1a1e0181cbd9d00259d34f980c0073efe8a3ed25f69433cfb74a3a4",
    "coin_flip": "a5f7ffe4a1a1e0181cbd9d00259d34f980c0073efe8a3ed25f69433cfb74a3a4",
    "commonsense_qa": "4cec2867bc6bc201eaa5fc96844870d85356f32b4fa652c75b8b5e42b9fedc76",
    "strategy_qa": "0857d069a693a83c20466971b7e522b3c90c3258146c9b9461df98e4d2468de1",
}

CHOICES_LEAD = " Answer Choices:"
SHUFFLED_OBJECTS_LEAD = " \nWhich choice is true ? Answer Choices:"
DATE_SHUFFLE_SEED = 1  # Kojima et al.'s --random_seed default, set just before data_reader
_CALCULATOR = re.compile(r"<<[^>]*>>")
_STRATEGY_TARGET = re.compile(r"(?:Yes|No)\.(.*)", re.DOTALL)


def split_file(key: str) -> RemoteFile:
    return REASONING_TEACHER.file(f"data/split/{key}__default.json", _SPLIT_SHA256[key])


# --- reading files -------------------------------------------------------------------------


def _json(source: FileSource, file: RemoteFile) -> Any:
    return json.loads(source.path(file).read_text(encoding="utf-8"))


def _jsonl(source: FileSource, *files: RemoteFile) -> list[Any]:
    """The records of ``files``, one after the other, in file order."""
    records = []
    for file in files:
        lines = source.path(file).read_text(encoding="utf-8").splitlines()
        records.extend(json.loads(line) for line in lines if line.strip())
    return records


def _letter(index: int) -> str:
    return chr(ord("A") + index)


def with_choices(stem: str, options: Sequence[str], lead: str = CHOICES_LEAD) -> str:
    """Kojima et al.'s multiple-choice question: ``stem Answer Choices: (A) x (B) y ...``."""
    return stem + lead + "".join(f" ({_letter(i)}) {text}" for i, text in enumerate(options))


# --- one reader per raw format ---------------------------------------------------------------


def _equation_problems(file: RemoteFile) -> Reader:
    """SingleEq, AddSub, MultiArith: ``sQuestion`` and the first of ``lSolutions``."""

    def read(source: FileSource) -> list[RawExample]:
        return [
            RawExample(item["sQuestion"].strip(), str(item["lSolutions"][0]))
            for item in _json(source, file)
        ]

    return read


def _svamp(source: FileSource) -> list[RawExample]:
    return [
        RawExample(f"{item['Body'].strip()} {item['Question'].strip()}", str(item["Answer"]))
        for item in _json(source, SVAMP)
    ]


def _gsm8k(source: FileSource) -> list[RawExample]:
    examples = []
    for item in _jsonl(source, GSM8K_TRAIN, GSM8K_TEST):
        solution, answer = item["answer"].split("####")
        rationale = _CALCULATOR.sub("", solution).strip()
        examples.append(RawExample(item["question"].strip(), answer.strip(), rationale=rationale))
    return examples


def _aqua_option_text(option: str) -> str:
    """An AQuA option as Kojima et al. print it: a space before ``(``, after ``)``."""
    spaced = option.replace("(", " (").replace(")", ") ")
    return " ".join(spaced.split())


def _aqua(source: FileSource) -> list[RawExample]:
    examples = []
    for item in _jsonl(source, AQUA_TRAIN, AQUA_TEST):
        texts = [option.split(")", 1)[1] for option in item["options"]]  # "A)21" -> "21"
        question = with_choices(item["question"].strip(), [_aqua_option_text(t) for t in texts])
        rationale = item.get("rationale", "").strip() or None
        examples.append(RawExample(question, item["correct"], tuple(texts), rationale))
    return examples


def _commonsense_qa(source: FileSource) -> list[RawExample]:
    examples = []
    for item in _jsonl(source, CSQA_TRAIN, CSQA_DEV):
        choices = item["question"]["choices"]
        stem = item["question"]["stem"].strip()
        question = stem + CHOICES_LEAD + "".join(f" ({c['label']}) {c['text']}" for c in choices)
        examples.append(RawExample(question, item["answerKey"], tuple(c["text"] for c in choices)))
    return examples


def _choice_example(stem: str, scored: Iterable[tuple[str, Any]], lead: str) -> RawExample:
    """A BIG-bench multiple-choice example from its ``target_scores`` in the order to show."""
    pairs = list(scored)
    options = tuple(text for text, _ in pairs)
    answer = _letter(next(i for i, (_, score) in enumerate(pairs) if score == 1))
    return RawExample(with_choices(stem, options, lead), answer, options)


def _date_understanding(source: FileSource) -> list[RawExample]:
    """Options in Kojima et al.'s ``shuffleDict`` order (BIG-bench lists the answer first)."""
    rng = random.Random(DATE_SHUFFLE_SEED)
    examples = []
    for item in _json(source, DATE)["examples"]:
        options = list(item["target_scores"])
        for _ in range(3):
            rng.shuffle(options)
        scored = ((text, item["target_scores"][text]) for text in options)
        examples.append(_choice_example(item["input"].strip(), scored, CHOICES_LEAD))
    return examples


def _tracking_shuffled_objects(source: FileSource) -> list[RawExample]:
    return [
        _choice_example(item["input"].strip(), item["target_scores"].items(), SHUFFLED_OBJECTS_LEAD)
        for item in _json(source, SHUFFLED_OBJECTS)["examples"]
    ]


def _strategy_qa(source: FileSource) -> list[RawExample]:
    examples = []
    for item in _json(source, STRATEGY_QA)["examples"]:
        answer = "yes" if item["target_scores"]["Yes"] == 1 else "no"
        facts = _STRATEGY_TARGET.match(item.get("target", ""))  # "Yes. <facts>"
        rationale = facts.group(1).strip() if facts else None
        examples.append(RawExample(item["input"].strip(), answer, rationale=rationale or None))
    return examples


def _question_answer(file: RemoteFile) -> Reader:
    """Coin Flip and Last Letters: ``{"examples": [{"question", "answer"}]}`` as published."""

    def read(source: FileSource) -> list[RawExample]:
        items = _json(source, file)["examples"]
        return [RawExample(item["question"], item["answer"]) for item in items]

    return read


# --- splitting ------------------------------------------------------------------------------


def _published(key: str, read: Reader) -> Loader:
    """A loader: ``read``'s examples with normalised answers, split by the published lists."""

    def load(source: FileSource) -> PublishedDataset:
        answer_type = DATASETS[key].answer_type
        examples = [
            ex._replace(answer=normalize_gold(ex.answer, answer_type)) for ex in read(source)
        ]
        split = _json(source, split_file(key))
        train, test = [int(i) for i in split["train"]], [int(i) for i in split["test"]]
        outside = [i for i in train + test if not 0 <= i < len(examples)]
        if outside:
            raise CotdistillError(
                f"{split_file(key).relative}: index {outside[0]} is outside the "
                f"{len(examples)} examples of {key}"
            )
        return PublishedDataset(examples, train, test)

    return load


LOADERS: dict[str, Loader] = {
    key: _published(key, read)
    for key, read in {
        "single_eq": _equation_problems(SINGLE_EQ),
        "addsub": _equation_problems(ADDSUB),
        "multiarith": _equation_problems(MULTIARITH),
        "gsm8k": _gsm8k,
        "aqua": _aqua,
        "svamp": _svamp,
        "date_understanding": _date_understanding,
        "tracking_shuffled_objects": _tracking_shuffled_objects,
        "last_letter_concatenation": _question_answer(LAST_LETTERS),
        "coin_flip": _question_answer(COIN_FLIP),
        "commonsense_qa": _commonsense_qa,
        "strategy_qa": _strategy_qa,
    }.items()
}

__all__ = ["LOADERS", "split_file", "with_choices"]
