"""Socratic CoT students: the shapes of QG / QA / unified training examples and which tokens
carry loss, the decompose stage's logic, the inference loop, and one end-to-end run with tiny
models (decompose -> train QG and QA -> loop -> scored predictions and metrics)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.repo import REPO

from cotdistill.errors import CotdistillError
from cotdistill.methods.socratic.decomposition_teacher import (
    compare,
    decompose,
    teacher_ask,
    training_decompositions,
)
from cotdistill.methods.socratic.decompositions import (
    EXEMPLARS,
    GSM8K_SOCRATIC_TEST,
    Decomposition,
)
from cotdistill.methods.socratic.students import (
    END,
    Transcript,
    loop_metrics,
    predictions,
    qa_examples,
    qg_examples,
    run_loop,
    run_unified_loop,
    training_examples,
    unified_examples,
)
from cotdistill.params import HParams, Params, TeacherParams
from cotdistill.params.socratic import SocraticParams
from cotdistill.records import PreparedExample
from cotdistill.student.data import IGNORE, encode
from cotdistill.teachers.registry import make_backend

MIRROR = REPO.parent / "shared/data/mirror"
QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have?"
PAIRS = [("How many apples does Tom buy?", "Tom buys 4 apples."),
         ("How many apples does Tom have?", "He has 3 + 4 = 7 apples.")]
DECOMPOSITION = Decomposition(id="gsm8k-00007", dataset="gsm8k", source="teacher", sample=1,
                              pairs=PAIRS, final_answer="7", correct=True)


# --- training examples ------------------------------------------------------------------------



def test_qg_examples_ask_for_each_next_sub_question_then_the_end_marker():
    examples = qg_examples(QUESTION, DECOMPOSITION)
    assert [(e.input, e.target) for e in examples] == [
        (f"{QUESTION}\nQ1:", " How many apples does Tom buy?"),
        (f"{QUESTION}\nQ1: How many apples does Tom buy?\nQ2:", " How many apples does Tom have?"),
        (f"{QUESTION}\nQ1: How many apples does Tom buy?\nQ2: How many apples does Tom have?\nQ3:",
         f" {END}"),
    ]
    assert all("A1" not in e.input for e in examples)  # QG sees sub-questions only
    assert {e.method for e in examples} == {"socratic_qg"}
    assert {e.source for e in examples} == {"gsm8k-00007#teacher:1"}
    assert [e.id for e in examples] == ["gsm8k-00007.0", "gsm8k-00007.1", "gsm8k-00007.2"]


def test_qa_examples_answer_the_current_sub_question_with_earlier_answers_in_the_prompt():
    examples = qa_examples(QUESTION, DECOMPOSITION)
    assert [(e.input, e.target) for e in examples] == [
        (f"{QUESTION}\nQ1: How many apples does Tom buy?\nA1:", " Tom buys 4 apples."),
        (f"{QUESTION}\nQ1: How many apples does Tom buy?\nA1: Tom buys 4 apples.\n"
         "Q2: How many apples does Tom have?\nA2:", " He has 3 + 4 = 7 apples."),
    ]
    assert {e.method for e in examples} == {"socratic_qa"}


def test_unified_examples_write_each_pair_in_turn_then_the_end_marker():
    examples = unified_examples(QUESTION, DECOMPOSITION)
    assert [(e.input, e.target) for e in examples] == [
        (f"{QUESTION}\nQ1:", " How many apples does Tom buy?\nA1: Tom buys 4 apples."),
        (f"{QUESTION}\nQ1: How many apples does Tom buy?\nA1: Tom buys 4 apples.\nQ2:",
         " How many apples does Tom have?\nA2: He has 3 + 4 = 7 apples."),
        (f"{QUESTION}\nQ1: How many apples does Tom buy?\nA1: Tom buys 4 apples.\n"
         "Q2: How many apples does Tom have?\nA2: He has 3 + 4 = 7 apples.\nQ3:", f" {END}"),
    ]
    assert {e.method for e in examples} == {"socratic_unified"}


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def _loss_text(tokenizer, encoded) -> tuple[str, list[int]]:
    """The text of the tokens that carry loss, and those tokens."""
    labelled = [t for t in encoded["labels"] if t != IGNORE]
    return tokenizer.decode(labelled, skip_special_tokens=True), labelled


@pytest.mark.parametrize("build", [qg_examples, qa_examples, unified_examples])
def test_only_the_target_and_eos_carry_loss(tokenizer, build):
    for example in build(QUESTION, DECOMPOSITION):
        encoded = encode(tokenizer, example.input, example.target, max_length=512)
        n_prompt = len(tokenizer(example.input)["input_ids"])
        assert encoded["labels"][:n_prompt] == [IGNORE] * n_prompt
        text, labelled = _loss_text(tokenizer, encoded)
        assert text == example.target
        assert labelled[-1] == tokenizer.eos_token_id
        assert labelled == encoded["input_ids"][n_prompt:]


def test_qa_earlier_answers_are_teacher_forced_not_trained(tokenizer):
    second = qa_examples(QUESTION, DECOMPOSITION)[1]
    encoded = encode(tokenizer, second.input, second.target, max_length=512)
    text, _ = _loss_text(tokenizer, encoded)
    prompt_text = tokenizer.decode([t for t, label in zip(encoded["input_ids"], encoded["labels"])
                                    if label == IGNORE])
    assert "Tom buys 4 apples." in prompt_text and "Tom buys 4 apples." not in text
    assert text == " He has 3 + 4 = 7 apples."


def test_the_end_marker_is_the_only_loss_of_the_last_qg_example(tokenizer):
    last = qg_examples(QUESTION, DECOMPOSITION)[-1]
    text, _ = _loss_text(tokenizer, encode(tokenizer, last.input, last.target, max_length=512))
    assert text == f" {END}"


def test_training_examples_map_decompositions_to_their_questions():
    other = DECOMPOSITION.model_copy(update={"id": "gsm8k-00008", "pairs": PAIRS[:1]})
    examples = training_examples("qg", [DECOMPOSITION, other],
                                 {"gsm8k-00007": QUESTION, "gsm8k-00008": "Other?"})
    assert len(examples) == 3 + 2
    assert examples[-1].input == "Other?\nQ1: How many apples does Tom buy?\nQ2:"


# --- the decompose stage's logic ---------------------------------------------------------------


def _prepared(question: str, answer: str, id: str, split: str = "train",
              dataset: str = "gsm8k") -> PreparedExample:
    return PreparedExample(id=id, dataset=dataset, split=split, question=question, answer=answer,
                           answer_type="number")


def _socratic_lines(count: int) -> list[dict]:
    text = (MIRROR / GSM8K_SOCRATIC_TEST.relative).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()[:count]]


def test_decompose_parses_teacher_outputs_adds_gold_and_compares_them(tmp_path):
    from cotdistill.datasets.sources import FileSource

    lines = _socratic_lines(2)
    examples = [_prepared(lines[0]["question"], "18", "g-0"),
                _prepared(lines[1]["question"], "3", "g-1"),
                _prepared("A made-up question?", "5", "g-2")]
    asked: list[tuple[str, int]] = []

    def ask(requests):
        asked.extend(requests)
        return ["Q1: How many eggs are sold?\nA1: 16 - 3 - 4 = 9 eggs.\nQ2: How much money?\n"
                "A2: 9 * 2 = $18.",
                "Q1: How many bolts?",  # truncated: malformed, dropped
                "Q1: What is it?\nA1: It is 4."]  # parsed, wrong

    settings = SocraticParams(source="both", exemplars=2)
    found, report = decompose(examples, settings, ask=ask, exemplars=EXEMPLARS[:2],
                              gold_source=FileSource(MIRROR, tmp_path, download=False))
    assert [request[1] for request in asked] == [0, 0, 0]
    assert asked[0][0].endswith(f"Problem: {lines[0]['question']}\n")
    assert [(d.id, d.source, d.correct) for d in found] == [
        ("g-0", "teacher", True), ("g-2", "teacher", False),
        ("g-0", "gold", True), ("g-1", "gold", True)]
    assert report["teacher"]["malformed_reasons"] == {"sub-question without an answer": 1}
    assert report["gold"]["unmatched"] == 1
    assert report["compared"]["questions"] == 1  # g-0 has both
    assert report["kept"] == {"teacher": 1, "gold": 2}
    only_gold = training_decompositions(found, SocraticParams(source="gold"))
    assert [(d.id, d.source) for d in only_gold] == [("g-0", "gold"), ("g-1", "gold")]
    assert len(training_decompositions(found, settings)) == 3
    assert compare(found)["teacher_mean_pairs"] == 2.0


def test_gold_only_with_no_gold_question_stops_with_a_clear_error(tmp_path):
    from cotdistill.datasets.sources import FileSource

    with pytest.raises(CotdistillError, match="no training question has a gold decomposition"):
        decompose([_prepared("Unknown?", "1", "x-0")], SocraticParams(source="gold"), ask=None,
                  exemplars=EXEMPLARS, gold_source=FileSource(MIRROR, tmp_path, download=False))


def test_teacher_decompositions_go_through_the_teacher_cache(tmp_path):
    """The teacher stage's backend + response cache: a second run calls no model."""
    from cotdistill.teachers.base import Completion

    class ScriptedBackend:
        name, model, identity, batch_priced = "scripted", "scripted-model", {}, False
        asks_model, prompt_api = True, "completions"
        calls: list[str] = []

        def complete(self, prompts, *, seeds, max_tokens, temperature, stop, on_batch,
                     admit=lambda i: True):
            self.calls.extend(prompts)
            outs = {i: Completion(text="Q1: What?\nA1: 7", prompt_tokens=10,
                                        completion_tokens=5) for i in range(len(prompts))}
            on_batch(outs)
            return [outs[i] for i in range(len(prompts))]

    backend = ScriptedBackend()
    teacher = TeacherParams(model="scripted-model", temperature=0.0, samples=1)
    ask = teacher_ask(backend, teacher, SocraticParams(), tmp_path / "cache.sqlite")
    requests = [("prompt one", 0), ("prompt two", 0)]
    assert ask(requests) == ["Q1: What?\nA1: 7", "Q1: What?\nA1: 7"]
    assert len(backend.calls) == 2
    assert ask(requests) == ["Q1: What?\nA1: 7", "Q1: What?\nA1: 7"]
    assert len(backend.calls) == 2  # all from the cache


def test_after_the_cache_is_lost_the_decompose_stage_restores_it_and_pays_nothing(
        tmp_path, monkeypatch):
    """The stage writes every teacher response with its cache key, malformed ones included;
    after `rm .cotdistill`, the next run restores them and calls no model."""
    from cotdistill.jsonl import read_records, write_records
    from cotdistill.records import TeacherResponse
    from cotdistill.stages import decompose as stage
    from cotdistill.teachers.base import Completion

    class Counting:
        name, model, identity, batch_priced = "scripted", "scripted-model", {}, False
        asks_model, prompt_api = True, "completions"

        def __init__(self) -> None:
            self.calls: list[str] = []

        def complete(self, prompts, *, seeds, max_tokens, temperature, stop, on_batch,
                     admit=lambda i: True):
            self.calls.extend(prompts)
            texts = ["Q1: How many?\nA1: The answer is 7." if "Apples" in prompt
                     else "no sub-questions here" for prompt in prompts]  # one malformed
            outs = {i: Completion(text=text, prompt_tokens=10, completion_tokens=5, usd=0.01)
                    for i, text in enumerate(texts)}
            on_batch(outs)
            return [outs[i] for i in range(len(prompts))]

    monkeypatch.chdir(tmp_path)
    write_records("data/prepared/train.jsonl", [
        _prepared("Apples: 3 and 4. How many?", "7", "t-0"),
        _prepared("Pears: 2 and 2. How many?", "4", "t-1")])
    params = Params.model_validate({"socratic": {"source": "teacher", "samples": 1,
                                                 "temperature": 0.0}}, strict=False)
    backends: list[Counting] = []

    def backend(*_args, **_kwargs):
        backends.append(Counting())
        return backends[-1]

    monkeypatch.setattr(stage, "make_backend", backend)
    first = stage.run(params)
    assert len(backends[0].calls) == 2 and first["teacher"]["malformed"] == 1
    paid = read_records("data/socratic/teacher_responses.jsonl", TeacherResponse)
    assert sorted(r.response["text"] for r in paid) == ["Q1: How many?\nA1: The answer is 7.",
                                                       "no sub-questions here"]
    decompositions = Path("data/socratic/decompositions.jsonl").read_text()
    for cache in Path(".cotdistill").glob("teacher-cache.sqlite*"):
        cache.unlink()  # the cache is lost
    again = stage.run(params)
    assert backends[1].calls == []  # nothing bought twice, the malformed response included
    assert again["teacher_responses"] == {"written": 2, "restored": 2}
    assert Path("data/socratic/decompositions.jsonl").read_text() == decompositions


def test_the_replay_backend_cannot_decompose(tmp_path):
    teacher = TeacherParams(backend="replay", temperature=0.0, samples=1)
    with pytest.raises(CotdistillError, match="replay"):
        teacher_ask(make_backend(teacher), teacher, SocraticParams(), tmp_path / "cache.sqlite")


def test_socratic_params_reject_unknown_keys_and_datasets():
    with pytest.raises(ValueError, match="max_stepz"):
        SocraticParams(max_stepz=3)
    with pytest.raises(ValueError, match="socratic.datasets names 'nope': neither"):
        Params(socratic=SocraticParams(datasets=["nope"]))
    with pytest.raises(ValueError, match="greedy"):
        SocraticParams(samples=2, temperature=0.0)
    assert Params().socratic == SocraticParams()


def test_decompose_command_writes_gold_decompositions_and_its_report(tmp_path, monkeypatch):
    import yaml
    from typer.testing import CliRunner

    from cotdistill.cli import app
    from cotdistill.jsonl import read_records, write_records

    lines = _socratic_lines(3)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "home"))  # download cache
    write_records("data/prepared/train.jsonl", [
        _prepared(item["question"], item["answer"].split("####")[1].strip(), f"gsm8k-{i:05d}")
        for i, item in enumerate(lines)])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({
        "prepare": {"mirror": str(MIRROR)},
        "socratic": {"source": "gold", "datasets": ["gsm8k"], "max_questions": 2}}))
    result = CliRunner().invoke(app, ["decompose"])
    assert result.exit_code == 0, result.output
    found = read_records("data/socratic/decompositions.jsonl", Decomposition)
    assert [(d.id, d.source, d.correct) for d in found] == [
        ("gsm8k-00000", "gold", True), ("gsm8k-00001", "gold", True)]
    report = json.loads((tmp_path / "reports/socratic/decompose.json").read_text())
    assert report["questions"] == 2 and report["kept"] == {"teacher": 0, "gold": 2}

    result = CliRunner().invoke(app, ["socratic-train", "--role", "unified"])
    assert result.exit_code == 1 and "socratic.unified is false" in result.output


# --- the inference loop -----------------------------------------------------------------------

SCRIPT = {  # question -> the decomposition the fake QG proposes (and None = never ends)
    "Q-a": ["How many apples?", "How many in all?"],
    "Q-b": ["What is 2 + 2?"],
    "Q-c": None,
}


def _scripted_qg(calls: list[int]):
    def propose(prompts: list[str]) -> list[str]:
        calls.append(len(prompts))
        outputs = []
        for prompt in prompts:
            question, *asked = prompt.split("\n")
            step = len(asked) - 1  # lines after the question, minus the open "Q<k>:"
            script = SCRIPT[question]
            if script is None:
                outputs.append(f" Sub-question {step + 1}?\nQ9: junk")
            else:
                outputs.append(f" {script[step]}" if step < len(script) else f" {END}")
        return outputs

    return propose


def _scripted_qa(prompts: list[str]) -> list[str]:
    answers = []
    for prompt in prompts:
        if "What is 2 + 2?" in prompt:
            answers.append(" 2 + 2 = 4\nQ2: extra line dropped")
        elif "How many in all?" in prompt:
            assert "A1: There are 3 apples." in prompt  # the earlier answer is in the prompt
            answers.append(" 3 + 4 = 7 apples")
        else:
            answers.append(" There are 3 apples.")
    return answers


def test_the_loop_alternates_qg_and_qa_until_the_end_marker_or_the_step_limit():
    calls: list[int] = []
    transcripts = run_loop(list(SCRIPT), _scripted_qg(calls), _scripted_qa, max_steps=3)
    a, b, c = transcripts
    assert a.pairs == [("How many apples?", "There are 3 apples."),
                       ("How many in all?", "3 + 4 = 7 apples")]
    assert (a.steps, a.stop, a.hit_limit) == (2, "end", False)
    assert b.pairs == [("What is 2 + 2?", "2 + 2 = 4")] and b.stop == "end"
    assert (c.steps, c.stop, c.hit_limit) == (3, "limit", True)
    assert c.pairs[0][0] == "Sub-question 1?"  # only the first line of a proposal is kept
    assert calls == [3, 3, 2]  # batched: finished questions leave the batch
    assert a.render() == ("Q1: How many apples?\nA1: There are 3 apples.\n"
                          "Q2: How many in all?\nA2: 3 + 4 = 7 apples\n[END]")
    assert c.render().endswith("[STEP LIMIT]")


def test_an_empty_proposal_stops_the_loop():
    [transcript] = run_loop(["Q"], lambda prompts: ["  \n"] * len(prompts), _scripted_qa, 4)
    assert transcript.stop == "empty" and transcript.steps == 0


def test_the_unified_loop_reads_each_pair_and_stops_on_end_or_a_malformed_step():
    def write(prompts: list[str]) -> list[str]:
        out = []
        for prompt in prompts:
            question, *history = prompt.split("\n")
            k = len(history) // 2 + 1
            if question == "done-after-1" and k == 2:
                out.append(f" {END}")
            elif question == "no-answer":
                out.append(" What now?")
            elif question == "one-line":  # a T5-style model writes no line breaks
                out.append(f" What is step {k}? A{k}: Step {k} = {k}")
            else:
                out.append(f" What is step {k}?\nA{k}: Step {k} = {k}")
        return out

    ended, malformed, limited, one_line = run_unified_loop(
        ["done-after-1", "no-answer", "forever", "one-line"], write, max_steps=2)
    assert ended.pairs == [("What is step 1?", "Step 1 = 1")] and ended.stop == "end"
    assert one_line.pairs == [("What is step 1?", "Step 1 = 1"), ("What is step 2?", "Step 2 = 2")]
    assert malformed.stop == "malformed" and malformed.steps == 0
    assert malformed.render() == '[MALFORMED STEP] " What now?"'  # what the model wrote
    assert limited.stop == "limit" and limited.steps == 2


def test_predictions_read_the_last_sub_answer_and_keep_the_transcript():
    examples = [_prepared("Q-a", "7", "t-0", "test"), _prepared("Q-b", "5", "t-1", "test"),
                _prepared("Q-c", "1", "t-2", "test")]
    transcripts = [Transcript("Q-a", [("x?", "3 + 4 = 7 apples")], "end"),
                   Transcript("Q-b", [("y?", "2 + 2 = 4")], "end"),
                   Transcript("Q-c", [], "empty")]
    scored = predictions(examples, transcripts, "tiny", "socratic")
    assert [(p.prediction, p.correct) for p in scored] == [("7", True), ("4", False),
                                                            (None, False)]
    assert scored[0].output == "Q1: x?\nA1: 3 + 4 = 7 apples\n[END]"
    metrics = loop_metrics(transcripts + [Transcript("Q-d", [("z?", "1")] * 3, "limit")], 3)
    assert metrics["mean_steps"] == (1 + 1 + 0 + 3) / 4
    assert metrics["step_limit_share"] == 0.25 and metrics["end_share"] == 0.5
    assert metrics["max_steps"] == 3


# --- end to end with tiny models ---------------------------------------------------------------


def _socratic_run(tmp_path, monkeypatch, *, train_steps: int, max_steps: int):
    """Gold decompositions (GSM8K socratic test lines) -> train a QG and a (larger) QA with
    train_student through the socratic-train stage -> the socratic-evaluate stage on the same
    3 questions. Returns (QG result, QA result, metrics, predictions, params)."""
    from cotdistill.datasets.sources import FileSource
    from cotdistill.jsonl import read_records, write_records
    from cotdistill.methods.socratic.decompositions import gold_decompositions
    from cotdistill.params import EvaluateParams, MlflowParams, Student, TrainParams
    from cotdistill.records import Prediction
    from cotdistill.stages import socratic_evaluate, socratic_train
    from cotdistill_testkit.tiny_model import build_tiny_model

    lines = _socratic_lines(40)
    corpus = [f"{item['question']}\n{item['answer']}" for item in lines] + [
        f"Q1: A1: Q2: A2: Q3: {END}"]
    qg = build_tiny_model(tmp_path / "qg", corpus=corpus, hidden_size=32, layers=1)
    qa = build_tiny_model(tmp_path / "qa", corpus=corpus, hidden_size=64, layers=2, seed=1)
    chosen = lines[:3]
    golds = [item["answer"].split("####")[1].strip() for item in chosen]
    train = [_prepared(item["question"], gold, f"gsm8k-{i:05d}")
             for i, (item, gold) in enumerate(zip(chosen, golds))]
    test = [_prepared(item["question"], gold, f"gsm8k-1{i:04d}", "test")
            for i, (item, gold) in enumerate(zip(chosen, golds))]
    decompositions = gold_decompositions(
        train, FileSource(MIRROR, tmp_path / "cache", download=False))
    assert [d.correct for d in decompositions] == [True, True, True]

    monkeypatch.chdir(tmp_path)
    write_records("data/prepared/train.jsonl", train)
    write_records("data/prepared/test.jsonl", test)
    write_records("data/socratic/decompositions.jsonl", decompositions)
    params = Params(
        students={"tiny-qg": Student(model=str(qg)), "tiny-qa": Student(model=str(qa))},
        train=TrainParams(students=["tiny-qa"]),
        evaluate=EvaluateParams(batch_size=4, max_examples=None),
        mlflow=MlflowParams(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"),
        socratic=SocraticParams(
            datasets=["gsm8k"], qg_student="tiny-qg", qa_student="tiny-qa", source="gold",
            max_steps=max_steps, max_subquestion_tokens=24, max_subanswer_tokens=40,
            hparams=HParams(max_steps=train_steps, learning_rate=5e-3, batch_size=8,
                            deepspeed="off", max_length=320, logging_steps=1,
                            # the random sampler's order these tiny runs were sized on: 3
                            # questions in 80 steps learn or not by the order they come in
                            group_by_length=False)),
    )
    qg_result = socratic_train.run(params, "tiny-qg", "qg")
    qa_result = socratic_train.run(params, "tiny-qa", "qa")
    n_pairs = sum(len(d.pairs) for d in decompositions)
    assert qg_result.examples == n_pairs + 3 and qa_result.examples == n_pairs
    for student, method in (("tiny-qg", "socratic_qg"), ("tiny-qa", "socratic_qa")):
        assert (tmp_path / "models" / student / method / "train_info.json").is_file()
    metrics = socratic_evaluate.run(params, "tiny-qa")
    out = tmp_path / "reports/eval/tiny-qa/socratic"
    assert json.loads((out / "metrics.json").read_text()) == metrics
    scored = read_records(out / "predictions.jsonl", Prediction)
    assert [p.id for p in scored] == [e.id for e in test]
    return qg_result, qa_result, metrics, scored, params


def _transcript_steps(output: str) -> tuple[int, str]:
    """(pairs, stop line) of a saved transcript; checks its Q1/A1/Q2/... layout."""
    *pair_lines, stop = output.split("\n")
    assert [line[:3] for line in pair_lines] == [
        f"{'QA'[i % 2]}{i // 2 + 1}:" for i in range(len(pair_lines))]
    return len(pair_lines) // 2, stop


def test_end_to_end_socratic_run_with_tiny_models(tmp_path, monkeypatch):
    from cotdistill.jsonl import read_records

    max_steps = 3
    qg_result, qa_result, metrics, scored, params = _socratic_run(
        tmp_path, monkeypatch, train_steps=6, max_steps=max_steps)
    assert qg_result.final_loss < qg_result.first_loss
    assert qa_result.final_loss < qa_result.first_loss
    assert {p.method for p in scored} == {"socratic"}
    steps = []
    for prediction in scored:
        count, stop = _transcript_steps(prediction.output)
        assert stop in {END, "[STEP LIMIT]"} or stop.startswith("[EMPTY SUB-QUESTION] ")
        assert count <= max_steps and (stop == "[STEP LIMIT]") == (count == max_steps)
        steps.append(count)
    assert metrics["n"] == 3
    assert metrics["accuracy"] == sum(p.correct for p in scored) / 3
    assert metrics["mean_steps"] == sum(steps) / 3
    assert metrics["step_limit_share"] == sum(s == max_steps for s in steps) / 3
    assert metrics["max_steps"] == max_steps

    import mlflow

    mlflow.set_tracking_uri(params.mlflow.tracking_uri)
    [run] = mlflow.search_runs(filter_string="tags.method = 'socratic'", output_format="list",
                               search_all_experiments=True)
    assert run.data.metrics["test_accuracy"] == metrics["accuracy"]
    assert run.data.metrics["socratic_mean_steps"] == metrics["mean_steps"]
    assert run.data.tags["student"] == "tiny-qa" and run.data.params["qg_student"] == "tiny-qg"

    # the pair is one MLflow model that runs the loop: the evaluation's transcripts again
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/socratic")
    questions = [prediction.id for prediction in scored]  # ids, to keep the order below
    test = {e.id: e for e in read_records(tmp_path / "data/prepared/test.jsonl", PreparedExample)}
    found = model.predict([test[i].question for i in questions])
    assert list(found["output"]) == [prediction.output for prediction in scored]
    assert list(found["answer"]) == [prediction.prediction for prediction in scored]
    shorter = model.predict([test[questions[0]].question], params={"max_steps": 1})
    assert _transcript_steps(shorter["output"][0])[0] <= 1
    assert model.metadata.get_params_schema().params[0].name == "max_steps"


@pytest.mark.slow
def test_tiny_qg_and_qa_that_learned_their_decompositions_solve_them(tmp_path, monkeypatch):
    """Trained until they nearly fit the 3 gold decompositions, QG learns when to stop (every
    run ends with the end marker, none at the step limit) and most final answers are right."""
    _, qa_result, metrics, scored, _ = _socratic_run(
        tmp_path, monkeypatch, train_steps=80, max_steps=6)
    assert qa_result.final_loss < 0.5
    assert all(_transcript_steps(p.output)[1] == END for p in scored)
    assert metrics["step_limit_share"] == 0.0 and metrics["end_share"] == 1.0
    assert metrics["accuracy"] >= 2 / 3
