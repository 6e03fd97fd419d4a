"""Per-task prompts (``prepare.datasets[].prompts``) reach the teacher, and a changed prompt is
asked again: the cache is keyed by the prompt text, so nothing stale is served.

``cotdistill teacher`` runs as a subprocess against the real server on loopback, whose own
counters say how many completions were paid for."""

from __future__ import annotations

import json

import pytest
import yaml
from support.teacher_runs import run_teacher_stage, served, workdir

from cotdistill.prompts import PROMPT_ID
from cotdistill.serve import running_server

QUESTIONS = 3
pytestmark = pytest.mark.slow  # a server and four teacher runs: CI's slow pass runs it


@pytest.fixture(scope="module")
def server(tiny_model):
    with running_server(str(tiny_model), max_batch=4, batch_window_s=0.01) as url:
        yield url, str(tiny_model)


def write(cwd, url: str, model: str, prompts: dict | None) -> None:
    teacher = dict(backend="openai", base_url=url, model=model, api="completions", samples=1,
                   temperature=0.0, max_rationale_tokens=8, max_answer_tokens=4,
                   concurrency=2, retry_base_s=0.1, timeout_s=60)
    entry = {"name": "coin_flip", "prompts": prompts} if prompts else "coin_flip"
    (cwd / "params.yaml").write_text(yaml.safe_dump(
        {"prepare": {"datasets": [entry]}, "teacher": teacher}))


def records(cwd) -> list[dict]:
    text = (cwd / "data/teacher/completions.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_a_changed_prompt_is_asked_again_and_named_in_the_records(server, tmp_path):
    url, model = server
    cwd = workdir(tmp_path / "repo", {}, QUESTIONS)

    def run(prompts: dict | None) -> int:
        write(cwd, url, model, prompts)
        before = served(url)
        done = run_teacher_stage(cwd)
        assert done.returncode == 0, done.stderr[-2000:]
        return served(url) - before

    assert run(None) == 2 * QUESTIONS  # a rationale and an answer per question
    assert {r["prompt_id"] for r in records(cwd)} == {PROMPT_ID}
    assert run(None) == 0  # unchanged: all from the cache

    trigger = {"answer_trigger": "So, in one word (Yes or No), the answer is"}
    assert run(trigger) == QUESTIONS  # the rationales are the same prompts; the answers are new
    (custom,) = {r["prompt_id"] for r in records(cwd)}
    assert custom != PROMPT_ID and custom.startswith("zs_cot@")

    reasoning = {**trigger, "reasoning": "Question: {question}\nAnswer: Reason it out."}
    assert run(reasoning) == 2 * QUESTIONS  # a new step 1, and so a new step 2
    assert {r["prompt_id"] for r in records(cwd)} not in ({PROMPT_ID}, {custom})

    assert run(None) == 0  # the defaults again: their responses are still in the cache
    assert {r["prompt_id"] for r in records(cwd)} == {PROMPT_ID}
