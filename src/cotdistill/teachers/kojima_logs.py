"""The published zero-shot-CoT runs of text-davinci-002 (Kojima et al. 2022), read from their logs.

Kojima et al. released one greedy zero-shot-CoT completion of a 175B teacher per question of
each benchmark, as plain-text logs in ``kojima-takeshi188/zero_shot_cot`` (``log/<name>_zero_
shot_cot.log``). They are the real teacher this project replays by default: a file per dataset,
pinned to a commit and a checksum, read from the mirror (``prepare.mirror`` /
``$COTDISTILL_DATA_MIRROR``) or downloaded once into the cache.

Each log entry holds the question, the rationale after "Let's think step by step.", the
answer trigger of the run (the ``direct_answer_trigger`` in the log header, e.g. "Therefore,
the answer (arabic numerals) is") and the answer text after it, then the authors' parsed
prediction and the gold answer. The rationale and the answer are split at that trigger, the
way the two-step prompt splits them. The logs follow Kojima's *shuffled* data loader, not the
dataset file, so entries are matched to prepared questions by question text.

Every one of the twelve Fine-tune-CoT benchmarks has a log, but three of Kojima's runs asked
only the questions that Fine-tune-CoT tests on: GSM8K's test set, AQuA's test set and
CommonsenseQA's dev set. Their training questions have no rationale here (they are counted as
missing, not hidden). What a log covers is not assumed: the replay matches its entries against
every prepared split and reports ``covers``: "train", "test", "both" (val counts as train,
being carved from it) or "none".
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

from cotdistill import answers
from cotdistill.datasets.sources import FileSource, RemoteFile
from cotdistill.datasets.splits import normalize_question
from cotdistill.errors import CotdistillError
from cotdistill.records import PreparedExample, Split, TeacherCompletion, Usage

COMMIT = "5ef330fcdeec0cd26aee27943504f91f8ec1c33c"
TEACHER = "text-davinci-002"
COT_TRIGGER = "Let's think step by step."
PROMPT_ID = "kojima_zs_cot@" + COMMIT[:8]  # their prompt, their run: no prompt of ours made it

# our dataset name -> (log name, sha256 of the log's bytes at COMMIT)
LOGS: dict[str, tuple[str, str]] = {
    "addsub": ("addsub", "5a35a7d04ad18f17a5918ba9f456ef85598ffb4ab340d40abd510b316ec65ce4"),
    "coin_flip": ("coin_flip", "6c5cd500498686106fad37b8ce85bed2bd26a790b6b1aaa8bec382a0d1103048"),
    "date_understanding": (
        "date_understanding", "14090fec37b29d4b7053f6ccc8d3865b8ffd949d9d2f21ae71c55f145cb087c8"),
    "gsm8k": ("gsm8k", "cfb2d43b29762ca5fb09856899a6f6595c7deda6ff73c5e8a3becb8d791c54c4"),
    "last_letter_concatenation": (
        "last_letters", "31e13b33aed4f1c8a920b10914fb31bc0965089afc714d0e72cf78a2f17387b5"),
    "multiarith": ("multiarith", "e2e3416d5f376b84513847b0ed2ac40fcfbe424b8279a18f0b6c980ff75fa351"),
    "tracking_shuffled_objects": (
        "shuffled_objects", "1bb4b95719d37b0cde221fa6d7fe40ab0aeb894d87973f48c6e1675b25301aa5"),
    "single_eq": ("singleeq", "51bbcb0c0fcc8f5696cd4cd74d89e46d7e5d9ff8fb2e639c1664254a2ecde251"),
    "svamp": ("svamp", "37043ef358b75e108860746c533d0c9be0f307ec3373959524778f1b8af5a75a"),
    "aqua": ("aqua", "743315681523f6c459bb9dee0d106e1bbf813059bb0ecc3a75a9bbf8917766ad"),
    "commonsense_qa": (  # Kojima's dataset name, spelt so
        "commonsensqa", "f8027dc6f4c85045ad7567dc71a9b5a4d69fb75af7cdf08ef809fcea617a2757"),
    "strategy_qa": (
        "strategyqa", "9268254c7c2d86a96b0346d64f5b782440b17ded142589d160ebb39e53fde5c9"),
}
# Why a log answers no training question: Kojima et al. ran only the split that Fine-tune-CoT tests
NOTES = {
    "gsm8k": "Kojima et al.'s GSM8K run covers the test questions only",
    "aqua": "Kojima et al.'s AQuA run covers the test questions only (AQuA's test set)",
    "commonsense_qa": "Kojima et al.'s CommonsenseQA run covers the test questions only "
                      "(CommonsenseQA's dev set)",
}

_SEPARATOR = re.compile(r"^\*{20,}$", re.M)
_HEADER = re.compile(r"^Namespace\((.*)\)$", re.M)


def log_file(dataset: str) -> RemoteFile:
    """The pinned log of ``dataset``; a clear error for a dataset Kojima et al. did not log."""
    if dataset not in LOGS:
        raise CotdistillError(
            f"teacher.replay_source kojima_logs: no published log for dataset {dataset!r} "
            f"(logs exist for: {', '.join(sorted(LOGS))})")
    name, sha256 = LOGS[dataset]
    return RemoteFile("kojima-takeshi188", "zero_shot_cot", COMMIT,
                      f"log/{name}_zero_shot_cot.log", f"sha256:{sha256}")


@dataclass(frozen=True)
class LogEntry:
    """One question of a log: ``position`` is its 1-based place in the log (Kojima's "Nth data")."""

    position: int
    question: str
    rationale: str
    answer_text: str
    gold: str


def answer_trigger(text: str, where: str) -> str:
    """The run's answer trigger, from the ``Namespace(...)`` header of the log."""
    header = _HEADER.search(text)
    match = re.search(r"direct_answer_trigger='((?:[^'\\]|\\.)*)'", header.group(1)) if header \
        else None
    if match is None:
        raise CotdistillError(f"{where}: no direct_answer_trigger in the log header")
    return ast.literal_eval(f"'{match.group(1)}'").strip()


def parse_log(text: str, where: str) -> list[LogEntry]:
    """Every entry of a log, in log order."""
    trigger = answer_trigger(text, where)
    entries = []
    for block in _SEPARATOR.split(text):
        if "_th_sampling" not in block or "\nQ: " not in f"\n{block}":
            continue
        body = block[block.index("Q: "):]
        question, sep, rest = body[3:].partition(f"\nA: {COT_TRIGGER}")
        tail = rest.find("\npred_before :")
        after = rest.find("\npred_after :")
        gold = re.search(r"^GT : (.*)$", rest, re.M)
        # The A part is the rationale, " \n", the trigger, and the second call's text. That text
        # can itself repeat the trigger, so the split is found from the log's pred_before (the
        # answer text, sometimes with a leading ":" stripped); where the authors' cleansing
        # already rewrote pred_before, at the first trigger after the rationale.
        answer = rest[tail + len("\npred_before :"):after].strip() if 0 <= tail < after else ""
        head = rest[:tail].rstrip() if tail >= 0 else ""
        at = head.rfind(answer) if answer else len(head)
        cut = head.rfind(trigger, 0, at + 1) if at >= 0 else -1
        if cut < 0 or head[cut + len(trigger):at].strip(" :\n"):
            cut = head.find(trigger)
        if not sep or gold is None or tail < 0 or cut < 0:
            raise CotdistillError(f"{where}: entry {len(entries) + 1} is not in the log format "
                                  f"(question, rationale, {trigger!r}, prediction, GT)")
        entries.append(LogEntry(
            position=len(entries) + 1, question=question.strip(),
            rationale=head[:cut].strip(), answer_text=head[cut + len(trigger):].strip(),
            gold=gold.group(1).strip()))
    if not entries:
        raise CotdistillError(f"{where}: no entries")
    return entries


@dataclass
class LogReplay:
    """What a replay of the logs matched, per dataset (``reports/teacher.json``)."""

    datasets: dict[str, dict] = field(default_factory=dict)

    @property
    def imported(self) -> int:
        return sum(d["imported"] for d in self.datasets.values())

    def as_dict(self) -> dict:
        return {"source": "kojima_logs", "teacher": TEACHER, "commit": COMMIT,
                "imported": self.imported, "datasets": self.datasets}


def _record(example: PreparedExample, entry: LogEntry, file: RemoteFile) -> TeacherCompletion:
    prediction = answers.extract(entry.answer_text, example.answer_type, example.choices)
    return TeacherCompletion(
        id=example.id, dataset=example.dataset, sample=0, backend="replay", model=TEACHER,
        prompt_id=PROMPT_ID, sampling={"temperature": 0.0},
        rationale=entry.rationale, answer_text=entry.answer_text, prediction=prediction,
        correct=answers.is_correct(prediction, example.answer, example.answer_type),
        usage=Usage(),
        lineage={"file": file.path, "repository": f"{file.owner}/{file.repo}",
                 "commit": file.revision, "position": entry.position},
    )


def coverage(splits: Iterable[str]) -> str:
    """What a log covers, from the splits of the prepared questions its entries matched:
    "train", "test", "both", or "none". Val questions are carved from the published training
    split, so they count as train."""
    sides = {"test" if split == "test" else "train" for split in splits}
    return "both" if len(sides) == 2 else next(iter(sides), "none")


def _coverage(entries: list[LogEntry], prepared: Iterable[PreparedExample]) -> dict:
    """Which prepared splits the log's entries matched, and how many entries each."""
    split_of: dict[str, str] = {}
    for example in prepared:
        split_of.setdefault(normalize_question(example.question), example.split)
    matched = Counter(split_of.get(normalize_question(entry.question)) for entry in entries)
    matched.pop(None, None)
    return {"covers": coverage(matched),
            "entries_by_split": {split: matched[split] for split in get_args(Split)
                                 if split in matched}}


def _import(entries: list[LogEntry], mine: list[PreparedExample], file: RemoteFile,
            records: dict[str, TeacherCompletion]) -> dict:
    """Records for ``mine`` (one dataset's asked questions) into ``records``; the counts."""
    by_question: dict[str, PreparedExample] = {}
    for example in mine:
        by_question.setdefault(normalize_question(example.question), example)
    other, repeated = 0, 0
    for entry in entries:
        example = by_question.get(normalize_question(entry.question))
        if example is None:
            other += 1
        elif example.id in records:
            repeated += 1  # a question published twice keeps its first completion
        else:
            records[example.id] = _record(example, entry, file)
    imported = sum(example.id in records for example in mine)
    return {"imported": imported, "entries_for_other_questions": other,
            "repeated_entries": repeated, "questions_without_entry": len(mine) - imported}


def replay_logs(examples: list[PreparedExample], files: FileSource,
                prepared: Sequence[PreparedExample] = ()
                ) -> tuple[list[TeacherCompletion], LogReplay]:
    """One record per question of ``examples`` that the published log of its dataset answers.

    Log entries with no asked question (other splits, questions the prepared set left out)
    and asked questions with no entry are counted per dataset, never silently dropped.
    ``prepared`` (every prepared question, of every split) is matched too, without records,
    to report which splits each log covers; without it the report makes no such claim (the
    asked questions alone cannot show that a log covers the test split).
    """
    report = LogReplay()
    records: dict[str, TeacherCompletion] = {}
    for dataset in dict.fromkeys(example.dataset for example in examples):
        file = log_file(dataset)
        path: Path = files.path(file)
        entries = parse_log(path.read_text(encoding="utf-8"), str(path))
        mine = [example for example in examples if example.dataset == dataset]
        known = [*mine, *(example for example in prepared if example.dataset == dataset)]
        report.datasets[dataset] = {
            "log": file.path, "entries": len(entries), **_import(entries, mine, file, records),
            **(_coverage(entries, known) if prepared else {}),
            **({"note": NOTES[dataset]} if dataset in NOTES else {}),
        }
    order = {example.id: position for position, example in enumerate(examples)}
    return sorted(records.values(), key=lambda r: order[r.id]), report
