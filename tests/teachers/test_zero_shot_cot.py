"""The teacher stage: two-step zero-shot-CoT, D samples, durable cache, lineage in every record."""

from __future__ import annotations

import pytest

from cotdistill import prompts
from cotdistill.params import TeacherParams
from cotdistill.records import PreparedExample
from cotdistill.teachers.transformers import TransformersBackend
from cotdistill.teachers.zero_shot_cot import run_teacher

EXAMPLES = [
    PreparedExample(id=f"coin_flip-{i:05d}", dataset="coin_flip", split="train",
                    question=f"A coin is heads up. Person{i} flips the coin. Is the coin still heads up?",
                    answer="no", answer_type="yes_no")
    for i in range(3)
]


@pytest.fixture()
def params(tiny_model) -> TeacherParams:
    return TeacherParams(model=str(tiny_model), samples=2, temperature=0.8,
                         max_rationale_tokens=8, max_answer_tokens=4, batch_size=4)


def test_every_question_gets_d_samples_with_lineage(params, tmp_path):
    backend = TransformersBackend(params.model, params.batch_size)
    records, stats = run_teacher(EXAMPLES, params, backend, tmp_path / "cache.sqlite")
    assert [(r.id, r.sample) for r in records] == [(e.id, s) for e in EXAMPLES for s in (0, 1)]
    assert stats.generated == 12 and stats.cached == 0  # 6 rationales + 6 answers
    for record in records:
        assert record.backend == "transformers" and record.model == params.model
        assert record.prompt_id == prompts.PROMPT_ID
        assert record.sampling["temperature"] == 0.8
        assert record.usage.prompt_tokens > 0 and record.usage.completion_tokens > 0
        assert record.correct == (record.prediction == "no")


def test_a_rerun_with_unchanged_inputs_calls_no_model(params, tmp_path):
    cache = tmp_path / "cache.sqlite"
    first, _ = run_teacher(EXAMPLES, params, TransformersBackend(params.model, 4), cache)
    backend = TransformersBackend(params.model, 4)
    second, stats = run_teacher(EXAMPLES, params, backend, cache)
    assert stats.generated == 0 and stats.cached == 12
    assert backend._loaded is None  # the model was never even loaded
    assert second == first


def test_more_samples_reuse_the_ones_already_made(params, tmp_path):
    cache = tmp_path / "cache.sqlite"
    first, _ = run_teacher(EXAMPLES, params, TransformersBackend(params.model, 4), cache)
    more = params.model_copy(update={"samples": 3})
    second, stats = run_teacher(EXAMPLES, more, TransformersBackend(params.model, 4), cache)
    assert stats.generated == 6  # only sample 2: 3 rationales + 3 answers
    assert [r for r in second if r.sample < 2] == first


def test_changed_sampling_params_are_new_calls(params, tmp_path):
    cache = tmp_path / "cache.sqlite"
    run_teacher(EXAMPLES, params, TransformersBackend(params.model, 4), cache)
    hotter = params.model_copy(update={"temperature": 1.0})
    _, stats = run_teacher(EXAMPLES, hotter, TransformersBackend(params.model, 4), cache)
    assert stats.generated >= 6  # every rationale is new; answers only where a rationale changed



def test_two_runs_at_once_with_the_local_model_buy_each_response_once(params, tmp_path):
    """The leases are the engine's, so they hold for the in-process backend too."""
    import threading

    cache = tmp_path / "cache.sqlite"
    results = {}

    def run(name: str) -> None:
        results[name] = run_teacher(EXAMPLES, params, TransformersBackend(params.model, 4), cache)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    (first, one), (second, two) = results["a"], results["b"]
    assert one.generated + two.generated == 12  # 6 rationales + 6 answers, each made once
    assert one.shared + two.shared > 0, "the runs did not overlap: nothing was proven"
    assert first == second
