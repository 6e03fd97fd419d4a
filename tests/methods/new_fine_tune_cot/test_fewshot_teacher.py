"""The teacher_fewshot stage: few-shot-CoT prompts, adaptive answers, hints, curation.

Most tests use a scripted backend (canned texts chosen by prompt) to pin down the prompt
building and the adaptive-answer logic; the shared cache / backend machinery is tested against
real servers in test_teacher*.py. One test runs the real local transformers backend.
"""

from __future__ import annotations

from cotdistill import prompts
from cotdistill.curation.select import curate, curation_stats
from cotdistill.methods.new_fine_tune_cot.fewshot_teacher import (
    HINT_ID,
    TEMPLATE_ID,
    fewshot_prompt,
    run_teacher_fewshot,
    stated_answer,
)
from cotdistill.params import CurateParams, FewshotParams, TeacherParams
from cotdistill.records import ClusteredExemplar, PreparedExample
from cotdistill.teachers.base import Completion
from cotdistill.teachers.transformers import TransformersBackend


def ex(id: str, question: str, answer: str, dataset: str = "coin_flip") -> PreparedExample:
    return PreparedExample(id=id, dataset=dataset, split="train", question=question,
                           answer=answer, answer_type="yes_no" if dataset == "coin_flip" else "number")


SHOTS = [
    ClusteredExemplar(dataset="coin_flip", cluster=0, rank=0, distance=0.1, id="cf-x",
             question="A coin is heads up. Zed flips the coin. Is it heads up?",
             rationale="Zed flips it once, so it is tails.", answer="no", source="cf-x#0"),
    ClusteredExemplar(dataset="coin_flip", cluster=1, rank=0, distance=0.2, id="cf-y",
             question="A coin is heads up. Nobody flips the coin. Is it heads up?",
             rationale="Nobody flips it, so it stays heads.", answer="yes", source="cf-y#1"),
]
STATES = ex("cf-1", "A coin is heads up. Ann flips the coin. Is it heads up?", "no")
SILENT = ex("cf-2", "A coin is heads up. Bob flips the coin. Is it heads up?", "no")
WRONG = ex("cf-3", "A coin is heads up. Cy does not flip the coin. Is it heads up?", "yes")
NO_SHOTS = ex("ar-1", "What is 2 plus 3?", "5", dataset="arith")  # no exemplar for arith
EXAMPLES = [STATES, SILENT, WRONG, NO_SHOTS]


class Scripted:
    """A backend that answers from a script keyed on what the prompt asks; records prompts."""

    name = "scripted"
    model = "canned"
    identity: dict = {}
    batch_priced = False

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def reply(self, prompt: str) -> str:
        if "Let's explain why" in prompt:
            return " Cy leaves it alone, so it stays heads up."
        if prompt.rstrip().endswith("is"):  # the second, answer call
            return " Yes." if "Cy does not" in prompt else " No."
        question = prompt.rsplit("Q: ", 1)[1]
        if "Ann" in question:
            return " Ann flips it once, so it is tails. The answer is no."
        if "Bob" in question:
            return " Bob flips it once, so it is tails."
        if "Cy" in question:
            return " Cy flips it, so it is tails. The answer is no."
        return " 2 plus 3 is 5. The answer is 5."

    def complete(self, prompts, *, seeds, max_tokens, temperature, stop, on_batch, admit):
        outs = {}
        for i, prompt in enumerate(prompts):
            assert admit(i)
            self.prompts.append(prompt)
            outs[i] = Completion(text=self.reply(prompt), prompt_tokens=len(prompt.split()),
                                 completion_tokens=5)
        on_batch(outs)
        return [outs[i] for i in range(len(prompts))]


PARAMS = TeacherParams(model="canned", samples=2, temperature=0.7)


def run(tmp_path, backend=None, *, hints=False, **fewshot):
    backend = backend or Scripted()
    records, summary = run_teacher_fewshot(
        EXAMPLES, SHOTS, PARAMS, backend, tmp_path / "cache.sqlite", hint_wrong=hints,
        fewshot=FewshotParams(hints=hints, **fewshot))
    return records, summary, backend


def by_id(records, id, hinted=False):
    return [r for r in records if r.id == id and r.hinted == hinted]


def test_prompt_holds_the_datasets_exemplars_then_the_question():
    prompt = fewshot_prompt(STATES.question, SHOTS)
    for shot in SHOTS:
        assert f"Q: {shot.question}\nA: {shot.rationale} The answer is {shot.answer}.\n\n" in prompt
    assert prompt.endswith(f"Q: {STATES.question}\nA:")
    assert fewshot_prompt(NO_SHOTS.question, []) == prompts.reasoning_prompt(NO_SHOTS.question)


def test_stated_answer_reads_after_the_last_answer_is():
    assert stated_answer("The answer is yes, no wait. So the answer is no.", STATES) == "no"
    assert stated_answer("It is tails.", STATES) is None


def test_adaptive_answer_one_call_when_stated_two_otherwise(tmp_path):
    records, summary, backend = run(tmp_path)
    assert [(r.id, r.sample) for r in records] == [(e.id, s) for e in EXAMPLES for s in (0, 1)]
    assert all(r.usage.calls == 1 for r in by_id(records, "cf-1") + by_id(records, "ar-1"))
    assert all(r.usage.calls == 2 for r in by_id(records, "cf-2"))
    answer_calls = [p for p in backend.prompts if p.rstrip().endswith("is")]
    assert len(answer_calls) == 2  # cf-2's two samples (the sample index is in the cache key)
    assert answer_calls[0].startswith(prompts.reasoning_prompt(SILENT.question))
    assert all(r.correct for r in by_id(records, "cf-1") + by_id(records, "cf-2"))
    assert not any(r.correct for r in by_id(records, "cf-3"))
    assert by_id(records, "ar-1")[0].prediction == "5"
    shot_prompts = [p for p in backend.prompts if SHOTS[0].question in p]
    assert len(shot_prompts) == 6  # every coin-flip question-sample gets the exemplars
    assert by_id(records, "cf-1")[0].prompt_id.startswith(TEMPLATE_ID + "+")
    assert by_id(records, "ar-1")[0].prompt_id == prompts.PROMPT_ID  # zero-shot fallback


def test_report_sets_adaptive_calls_against_two_step(tmp_path):
    records, summary, _ = run(tmp_path)
    report = summary.report(records)
    assert report["calls"]["two_step"] == 16  # 4 questions x 2 samples x 2 calls
    assert report["calls"]["adaptive"] == 10  # only cf-2's 2 samples need a second call
    assert report["calls"]["adaptive_per_question"] == 2.5
    assert report["calls"]["two_step_per_question"] == 4.0
    assert report["answered_in_rationale"] == 6
    assert report["accuracy"] == 6 / 8 and report["hinted"] == 0
    assert report["zero_shot_fallback_questions"] == 1


def test_not_adaptive_always_makes_two_calls(tmp_path):
    records, _, _ = run(tmp_path, adaptive=False)
    assert all(r.usage.calls == 2 for r in records)


def test_hints_only_for_questions_with_no_correct_sample_and_flagged(tmp_path):
    records, summary, backend = run(tmp_path, hints=True, hint_samples=1)
    hinted = [r for r in records if r.hinted]
    assert [(r.id, r.sample) for r in hinted] == [("cf-3", 2)]
    assert hinted[0].prompt_id == HINT_ID and hinted[0].correct and hinted[0].prediction == "yes"
    hint_prompts = [p for p in backend.prompts if "Let's explain why" in p]
    assert hint_prompts == ["Q: " + WRONG.question + "\nA: The answer is yes. Let's explain why, "
                            "step by step."]
    report = summary.report(records)
    assert report["hinted"] == 1 and report["hinted_questions"] == 1
    assert report["calls"]["hint"] == 1 and report["accuracy"] == 6 / 8  # hints not counted


def test_a_hinted_rationale_that_contradicts_the_gold_is_not_correct(tmp_path):
    class Contrary(Scripted):
        def reply(self, prompt):
            if "Let's explain why" in prompt:
                return " Cy flips it. The answer is no."
            return super().reply(prompt)

    records, _, _ = run(tmp_path, Contrary(), hints=True)
    assert [r.correct for r in records if r.hinted] == [False]


def test_a_rerun_makes_no_calls(tmp_path):
    first, _, _ = run(tmp_path, hints=True)
    again = Scripted()
    second, summary, _ = run(tmp_path, again, hints=True)
    assert again.prompts == [] and summary.stats.generated == 0
    assert second == first


def test_after_the_cache_is_lost_the_records_restore_it_and_nothing_is_paid_again(tmp_path):
    """Adaptive answers (one call or two) and hinted rationales alike carry their cache keys."""
    first, _, paid = run(tmp_path, hints=True)
    assert {bool(r.lineage and r.lineage.get("answer_key")) for r in first} == {True, False}
    (tmp_path / "cache.sqlite").unlink()
    again = Scripted()
    second, summary = run_teacher_fewshot(
        EXAMPLES, SHOTS, PARAMS, again, tmp_path / "cache.sqlite", hint_wrong=True,
        fewshot=FewshotParams(hints=True), previous=first)
    assert again.prompts == [] and summary.stats.generated == 0
    assert summary.stats.restored == len(paid.prompts)  # every paid response, once
    assert second == first


def curated_with(policy, tmp_path):
    records, _, _ = run(tmp_path, hints=True)
    params = CurateParams(hinted=policy, hint_weight=0.25)
    return curate(EXAMPLES, [], params, fewshot=records), records


def test_new_fine_tune_cot_is_curated_from_the_fewshot_completions(tmp_path):
    curated, records = curated_with("keep", tmp_path)
    rows = curated["new_fine_tune_cot"]
    assert curated["fine_tune_cot"] == []  # no zero-shot completions were given
    assert [r.source for r in rows] == ["cf-1#0", "cf-1#1", "cf-2#0", "cf-2#1", "cf-3#2",
                                        "ar-1#0", "ar-1#1"]
    assert rows[0].input == f"{STATES.question} ###"
    assert rows[0].target.endswith(" --> no") and all(r.weight is None for r in rows)
    stats = curation_stats(EXAMPLES, records, curated, method="new_fine_tune_cot")
    assert stats["kept_rationales"] == 7 and stats["hinted"] == 1
    assert stats["teacher_accuracy"] == 6 / 8


def test_curate_without_fewshot_file_has_no_new_fine_tune_cot():
    assert "new_fine_tune_cot" not in curate(EXAMPLES, [], CurateParams())


def test_curate_drops_hinted(tmp_path):
    curated, _ = curated_with("drop", tmp_path)
    assert "cf-3#2" not in [r.source for r in curated["new_fine_tune_cot"]]


def test_curate_downweights_hinted(tmp_path):
    curated, _ = curated_with("downweight", tmp_path)
    weights = {r.source: r.weight for r in curated["new_fine_tune_cot"]}
    assert weights["cf-3#2"] == 0.25
    assert all(w is None for s, w in weights.items() if s != "cf-3#2")


def test_real_transformers_backend(tiny_model, tmp_path):
    params = TeacherParams(model=str(tiny_model), samples=2, temperature=0.8,
                           max_rationale_tokens=8, max_answer_tokens=4, batch_size=4)
    examples = [STATES, SILENT]
    cache = tmp_path / "cache.sqlite"
    records, summary = run_teacher_fewshot(
        examples, SHOTS, params, TransformersBackend(params.model, 4), cache, hint_wrong=True)
    regular = [r for r in records if not r.hinted]
    assert [(r.id, r.sample) for r in regular] == [(e.id, s) for e in examples for s in (0, 1)]
    assert all(r.usage.calls in (1, 2) and r.usage.prompt_tokens > 0 for r in records)
    report = summary.report(records)
    assert report["calls"]["two_step"] == 8
    assert report["calls"]["adaptive"] == sum(r.usage.calls for r in regular)
    wrong = {e.id for e in examples} - {r.id for r in regular if r.correct}
    assert {r.id for r in records if r.hinted} == wrong
    backend = TransformersBackend(params.model, 4)
    again, summary = run_teacher_fewshot(examples, SHOTS, params, backend, cache, hint_wrong=True)
    assert again == records and summary.stats.generated == 0 and backend._loaded is None
