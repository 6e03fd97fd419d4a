"""A task's own few-shot exemplars (``prepare.datasets[].prompts.exemplars``) replace the
clustered ones, and reach both few-shot prompts: the few-shot teacher pass and the baseline."""

from __future__ import annotations

import json

import pytest
from support.teacher_runs import coin_questions

from cotdistill.errors import CotdistillError
from cotdistill.methods.new_fine_tune_cot.fewshot_teacher import (
    fewshot_prompt,
    shots_id,
)
from cotdistill.params import Params
from cotdistill.stages import exemplars as stage
from cotdistill.curation.shots import load_exemplars

SHOTS = [{"question": "A coin is heads up. Ann flips the coin. Is the coin still heads up?",
          "rationale": "Ann flips it once, so it is tails up.", "answer": "no"},
         {"question": "A coin is heads up. Bob does not flip it. Is the coin still heads up?",
          "rationale": "Nobody flips it, so it is still heads up.", "answer": "yes"}]


def test_given_exemplars_are_written_unclustered_and_used_by_both_few_shot_prompts(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data/prepared").mkdir(parents=True)
    (tmp_path / "data/teacher").mkdir(parents=True)
    questions = coin_questions(3)
    (tmp_path / "data/prepared/train.jsonl").write_text(
        "".join(q.model_dump_json() + "\n" for q in questions))
    (tmp_path / "data/teacher/completions.jsonl").write_text("")
    params = Params.model_validate({"prepare": {"datasets": [
        {"name": "coin_flip", "prompts": {"exemplars": SHOTS}}]}}, strict=False)
    # no embedder is loaded: every dataset has its exemplars (builtin:nonexistent would fail)
    params = params.model_copy(update={"exemplars": params.exemplars.model_copy(
        update={"embedder": "builtin:nonexistent"})})
    chosen = stage.run(params)
    assert [(e.question, e.rationale, e.answer) for e in chosen] == [
        (s["question"], s["rationale"], s["answer"]) for s in SHOTS]
    written = [json.loads(line) for line in
               (tmp_path / "data/exemplars.jsonl").read_text().splitlines()]
    assert [row["source"] for row in written] == ["params", "params"]
    shots = load_exemplars()["coin_flip"]
    assert [s["answer"] for s in shots] == ["no", "yes"]
    prompt = fewshot_prompt(questions[0].question, chosen)
    assert prompt.startswith(f"Q: {SHOTS[0]['question']}\nA: {SHOTS[0]['rationale']} The answer "
                             f"is no.\n\n")
    assert prompt.endswith(f"Q: {questions[0].question}\nA:")
    assert shots_id(chosen).startswith("fs_cot@")


def test_the_baseline_reads_exemplars_as_the_few_shot_teacher_does_naming_a_bad_line(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    good = {"dataset": "coin_flip", "cluster": 0, "rank": 0, "distance": 0.0, "id": "cf-1",
            **SHOTS[0], "source": "params"}
    (tmp_path / "data/exemplars.jsonl").write_text(
        json.dumps(good) + "\n" + json.dumps({**good, "cluster": "first"}) + "\n")
    with pytest.raises(CotdistillError, match=r"data/exemplars\.jsonl:2: .*cluster"):
        load_exemplars()
