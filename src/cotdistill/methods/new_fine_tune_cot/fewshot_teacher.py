"""The ``teacher_fewshot`` stage: New-Fine-tune-CoT's few-shot-CoT teacher pass.

For every training question the teacher gets a few-shot-CoT prompt built from its dataset's
exemplars (the ``exemplars`` stage: clustered, heuristic-corrected zero-shot-CoT rationales,
in Wei et al.'s ``Q: ... A: ... The answer is X.`` format of :func:`prompts.few_shot_block`)
and writes D rationales at temperature T (``teacher.samples`` / ``teacher.temperature``). A
dataset with no exemplar gets zero-shot-CoT's reasoning prompt instead.

**Adaptive answer** (Li et al. 2024, section 2.3): a rationale that follows the exemplars
usually ends with "The answer is X"; then X (read with :func:`answers.extract` from the text
after the last "answer is") is the answer and no second call is made. Only a rationale that
states no answer gets Fine-tune-CoT's second "Therefore, the answer ... is" call
(:func:`prompts.answer_prompt`). Each record's ``usage.calls`` is 1 or 2, and the run report
sets the calls made against the 2 per sample an always-two-step teacher would have made.

**Answer-hint rationalization** (seed 002; STaR / Magister et al.): with
``teacher_fewshot.hints``, every question with no correct sample after that pass is asked again
with the gold answer given (:data:`cotdistill.prompts.HINT`). Those completions have
``hinted=True`` and sample numbers after the D regular ones. Rule for their correctness: the
prediction is the gold answer, and the completion is ``correct`` unless its rationale itself
states a different answer ("... the answer is Y" with Y != gold), i.e. unless it contradicts
the hint. ``curate.hinted`` then keeps, drops or down-weights them.

Everything goes through the teacher's response cache (a re-run calls no model); failures raise
:class:`TeacherIncomplete` after everything bought is stored, as in the ``teacher`` stage.

Usage: ``cotdistill teacher-fewshot`` (reads ``data/prepared/train.jsonl`` and
``data/exemplars.jsonl``, writes ``data/teacher/fewshot_completions.jsonl`` and
``reports/teacher_fewshot.json``).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from cotdistill import answers, prompts
from cotdistill.params import FewshotParams, TeacherParams
from cotdistill.records import ClusteredExemplar, PreparedExample, TeacherCompletion, Usage
from cotdistill.teachers.base import Backend, Completion
from cotdistill.teachers.budget import Budget
from cotdistill.teachers.cache import ResponseCache
from cotdistill.teachers.engine import (
    CallStats,
    TeacherIncomplete,
    answer_step,
    ask_answers,
    cached_complete,
    incomplete_message,
    Step,
    make_budget,
    rationale_step,
    request_key,
)
from cotdistill.teachers.zero_shot_cot import restorable

_BLOCK = prompts.few_shot_block([{"question": "{q}", "rationale": "{r}", "answer": "{a}"}])
TEMPLATE_ID = "fs_cot@" + hashlib.sha256(
    repr((_BLOCK, prompts.FEW_SHOT_QUESTION)).encode()).hexdigest()[:8]
HINT_ID = "hint@" + hashlib.sha256(prompts.HINT.encode()).hexdigest()[:8]
_STATED = re.compile(r"answer is", re.I)


def shots_id(shots: list[ClusteredExemplar], task: prompts.TaskPrompts = prompts.DEFAULT) -> str:
    """The prompt id of a dataset's few-shot prompt: template hash + exemplar-set hash."""
    if not shots:
        return task.prompt_id
    digest = hashlib.sha256(repr([(e.question, e.rationale, e.answer) for e in shots]).encode())
    return f"{TEMPLATE_ID}+{digest.hexdigest()[:8]}"


def fewshot_prompt(question: str, shots: list[ClusteredExemplar],
                   task: prompts.TaskPrompts = prompts.DEFAULT) -> str:
    """The dataset's exemplar blocks then the question; its zero-shot-CoT prompt with none."""
    if not shots:
        return prompts.reasoning_prompt(question, task)
    return prompts.few_shot_prompt([e.model_dump() for e in shots], question)


def hint_prompt(example: PreparedExample) -> str:
    return prompts.HINT.format(question=example.question, answer=example.answer)


def stated_answer(rationale: str, example: PreparedExample) -> str | None:
    """The answer the rationale states ("... The answer is X."), read after the last
    "answer is"; None when it states none."""
    found = list(_STATED.finditer(rationale))
    if not found:
        return None
    return answers.extract(rationale[found[-1].end():], example.answer_type, example.choices)


@dataclass
class FewshotRun:
    """What one run did, for ``reports/teacher_fewshot.json``."""

    stats: CallStats
    questions: int
    samples: int
    fallback_questions: int  # questions of datasets with no exemplar (zero-shot-CoT prompt)
    answered_in_rationale: int  # samples whose rationale stated the answer (one call)
    hinted_questions: int

    def report(self, records: list[TeacherCompletion]) -> dict:
        regular = [r for r in records if not r.hinted]
        hinted = [r for r in records if r.hinted]
        adaptive = sum(r.usage.calls for r in regular)
        two_step = 2 * len(regular)
        per_q = max(self.questions, 1)
        correct_ids = {r.id for r in regular if r.correct}
        by_dataset: dict[str, dict] = {}
        for dataset in sorted({r.dataset for r in records}):
            mine = [r for r in regular if r.dataset == dataset]
            ids = {r.id for r in mine}
            by_dataset[dataset] = {
                "questions": len(ids),
                "accuracy": sum(r.correct for r in mine) / len(mine) if mine else 0.0,
                "calls_adaptive": sum(r.usage.calls for r in mine),
                "calls_two_step": 2 * len(mine),
                "hinted": sum(1 for r in hinted if r.dataset == dataset),
            }
        return {
            "questions": self.questions,
            "samples": self.samples,
            "completions": len(regular),
            "zero_shot_fallback_questions": self.fallback_questions,
            "accuracy": sum(r.correct for r in regular) / len(regular) if regular else 0.0,
            "questions_with_a_correct_sample": len(correct_ids),
            "answered_in_rationale": self.answered_in_rationale,
            "calls": {
                "adaptive": adaptive,
                "two_step": two_step,
                "adaptive_per_question": adaptive / per_q,
                "two_step_per_question": two_step / per_q,
                "saved_fraction": 1 - adaptive / two_step if two_step else 0.0,
                "hint": sum(r.usage.calls for r in hinted),
            },
            "hinted": len(hinted),
            "hinted_questions": self.hinted_questions,
            "hinted_correct": sum(r.correct for r in hinted),
            "datasets": by_dataset,
            "this_run": {"model_calls": self.stats.generated, "cached": self.stats.cached,
                         "prompt_tokens": self.stats.prompt_tokens,
                         "completion_tokens": self.stats.completion_tokens,
                         "usd": round(self.stats.usd, 6), "steps": self.stats.steps},
        }


def run_teacher_fewshot(
    examples: list[PreparedExample], exemplars: list[ClusteredExemplar], params: TeacherParams,
    backend: Backend, cache_path: Path, *, hint_wrong: bool,
    fewshot: FewshotParams = FewshotParams(), tasks: prompts.Tasks | None = None,
    previous: list[TeacherCompletion] | None = None,
) -> tuple[list[TeacherCompletion], FewshotRun]:
    """Few-shot-CoT with adaptive answers (and, with ``hint_wrong``, hints) for ``examples``.

    Raises :class:`TeacherIncomplete` (after storing everything that came back) when any
    request failed or was refused by ``teacher.max_usd``. Each record carries the cache keys
    of its requests (``lineage``), and ``previous`` (the stage's last output) is restored into
    the cache first, so a lost cache is never paid for again.
    """
    stats = CallStats()
    budget = make_budget(params, backend)
    cache = ResponseCache(cache_path)
    if previous:
        stats.restored = cache.restore(restorable(previous))
    shots: dict[str, list[ClusteredExemplar]] = defaultdict(list)
    for exemplar in exemplars:
        shots[exemplar.dataset].append(exemplar)
    rs = rationale_step(params)
    step = Step(fewshot.max_rationale_tokens or rs.max_tokens, rs.temperature, rs.seed, rs.stop)
    sampling = {"temperature": params.temperature, "seed": params.seed,
                "max_rationale_tokens": step.max_tokens,
                "max_answer_tokens": params.max_answer_tokens}
    pairs = [(ex, s) for ex in examples for s in range(params.samples)]
    asks = [fewshot_prompt(ex.question, shots.get(ex.dataset, []), prompts.of(tasks, ex.dataset))
            for ex, _ in pairs]
    hinted_questions = 0
    try:
        rationales, stated, answer_texts = _ask(
            backend, cache, pairs, asks, stats, budget, step, answer_step(params), tasks,
            adaptive=fewshot.adaptive)
        records = [
            _record(example, sample, rationale, answer_texts.get(index), stated.get(index),
                    backend, shots_id(shots.get(example.dataset, []),
                                      prompts.of(tasks, example.dataset)), sampling,
                    lineage=_lineage(backend, example, sample, rationale, index in answer_texts,
                                     asks[index], step, answer_step(params), tasks))
            for index, ((example, sample), rationale) in enumerate(zip(pairs, rationales))
        ]
        if hint_wrong:
            right = {r.id for r in records if r.correct}
            wrong = [ex for ex in examples if ex.id not in right]
            hinted_questions = len(wrong)
            records += _hinted_records(
                wrong, backend, cache, stats, budget, params, fewshot, step.max_tokens,
                sampling, asked_before=len(pairs))
    finally:
        cache.close()
    run = FewshotRun(
        stats=stats, questions=len(examples), samples=params.samples,
        fallback_questions=sum(1 for ex in examples if not shots.get(ex.dataset)),
        answered_in_rationale=len(stated), hinted_questions=hinted_questions,
    )
    return records, run


def _ask(backend: Backend, cache: ResponseCache, pairs: list[tuple[PreparedExample, int]],
         asks: list[str], stats: CallStats, budget: Budget | None, step: Step, answer: Step,
         tasks: prompts.Tasks | None, *, adaptive: bool) -> tuple[list, dict, dict]:
    """The two calls: a rationale for every (question, sample), then an answer for those that
    did not state theirs (``adaptive``). Raises :class:`TeacherIncomplete` when anything is
    missing, after everything that came back is cached."""
    before = stats.totals()
    rationales = cached_complete(
        backend, cache, list(zip(asks, (sample for _, sample in pairs))), stats,
        max_tokens=step.max_tokens, temperature=step.temperature, seed=step.seed,
        stop=step.stop, budget=budget)
    stats.mark("rationale", before)
    stated = _stated_answers(rationales, pairs) if adaptive else {}
    asked = [i for i, r in enumerate(rationales) if isinstance(r, Completion) and i not in stated]
    before = stats.totals()
    answer_texts = ask_answers(backend, cache, pairs, rationales, asked, stats, answer, budget,
                               tasks)
    stats.mark("answer", before)
    if (stats.failed or stats.not_sent
            or any(not isinstance(r, Completion) for r in rationales)
            or any(not isinstance(a, Completion) for a in answer_texts.values())):
        raise TeacherIncomplete(incomplete_message(stats, budget, len(pairs)), stats)
    return rationales, stated, answer_texts


def _stated_answers(rationales: list, pairs: list[tuple[PreparedExample, int]]
                    ) -> dict[int, str]:
    """{index: answer} of the rationales that state their answer: no second call for those."""
    stated = {}
    for i, rationale in enumerate(rationales):
        if isinstance(rationale, Completion):
            answer = stated_answer(rationale.text, pairs[i][0])
            if answer is not None:
                stated[i] = answer
    return stated


def _lineage(backend: Backend, example: PreparedExample, sample: int, rationale: Completion,
             asked: bool, prompt: str, rationale_step_: Step, ans: Step,
             tasks: prompts.Tasks | None) -> dict:
    """The cache keys of a record's requests, and the rationale as the model returned it (the
    record keeps it stripped), so that the cache can be rebuilt from the record alone."""
    lineage = {"rationale_key": request_key(backend, prompt, sample, rationale_step_),
               "rationale_raw": rationale.text}
    if asked:
        lineage["answer_key"] = request_key(backend, prompts.answer_prompt(
            example.question, rationale.text, example.answer_type, example.choices,
            prompts.of(tasks, example.dataset)), sample, ans)
    return lineage


def _record(example: PreparedExample, sample: int, rationale: Completion,
            answer: Completion | None, stated: str | None, backend: Backend, prompt_id: str,
            sampling: dict, lineage: dict | None = None) -> TeacherCompletion:
    """One few-shot completion: one call when the rationale ``stated`` its answer, else two
    (the rationale and the ``answer`` step)."""
    if answer is None:
        assert stated is not None
        prediction, answer_text, calls = stated, stated, 1
        prompt_tokens = rationale.prompt_tokens
        completion_tokens, usd = rationale.completion_tokens, rationale.usd
    else:
        prediction = answers.extract(answer.text, example.answer_type, example.choices)
        answer_text, calls = answer.text.strip(), 2
        prompt_tokens = rationale.prompt_tokens + answer.prompt_tokens
        completion_tokens = rationale.completion_tokens + answer.completion_tokens
        usd = rationale.usd + answer.usd
    return TeacherCompletion(
        id=example.id, dataset=example.dataset, sample=sample, backend=backend.name,
        model=backend.model, prompt_id=prompt_id, sampling=sampling,
        rationale=rationale.text.strip(), answer_text=answer_text, prediction=prediction,
        correct=answers.is_correct(prediction, example.answer, example.answer_type),
        usage=Usage(calls=calls, prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens, usd=round(usd, 10)),
        top_logprobs=rationale.top_logprobs, tokens=rationale.tokens, lineage=lineage,
    )


def _hinted_records(wrong: list[PreparedExample], backend: Backend, cache: ResponseCache,
                    stats: CallStats, budget, params: TeacherParams, fewshot: FewshotParams,
                    max_rationale: int, sampling: dict, *, asked_before: int
                    ) -> list[TeacherCompletion]:
    """Heuristic correction: ``hint_samples`` hinted rationales per question the teacher got
    wrong; a hinted rationale that states another answer than the gold one is not correct."""
    rs = rationale_step(params)
    hint_pairs = [(ex, params.samples + j) for ex in wrong for j in range(fewshot.hint_samples)]
    before = stats.totals()
    hints = cached_complete(
        backend, cache, [(hint_prompt(ex), s) for ex, s in hint_pairs], stats,
        max_tokens=max_rationale, temperature=rs.temperature, seed=rs.seed, stop=rs.stop,
        budget=budget,
    )
    stats.mark("hint", before)
    if stats.failed or stats.not_sent or any(not isinstance(h, Completion) for h in hints):
        raise TeacherIncomplete(
            incomplete_message(stats, budget, asked_before + len(hint_pairs)), stats)
    records = []
    for (example, sample), hint in zip(hint_pairs, hints):
        claimed = stated_answer(hint.text, example)
        records.append(TeacherCompletion(
            id=example.id, dataset=example.dataset, sample=sample, backend=backend.name,
            model=backend.model, prompt_id=HINT_ID, sampling=sampling,
            rationale=hint.text.strip(), answer_text=example.answer, prediction=example.answer,
            correct=claimed is None or answers.is_correct(
                claimed, example.answer, example.answer_type),
            hinted=True,
            usage=Usage(calls=1, prompt_tokens=hint.prompt_tokens,
                        completion_tokens=hint.completion_tokens, usd=round(hint.usd, 10)),
            top_logprobs=hint.top_logprobs, tokens=hint.tokens,
            lineage={"rationale_key": request_key(
                backend, hint_prompt(example), sample,
                Step(max_rationale, rs.temperature, rs.seed, rs.stop)),
                "rationale_raw": hint.text},
        ))
    return records
