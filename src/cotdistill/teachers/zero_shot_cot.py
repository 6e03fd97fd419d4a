"""The ``teacher`` stage's pass: Fine-tune-CoT's two-step zero-shot-CoT with diverse reasoning.

For every training question the teacher writes D rationales at temperature T (step 1), then
answers after the trigger "Therefore, the answer ... is" (step 2, greedy). The answer is
extracted and compared with the gold answer; every completion becomes a teacher-completion
record with its lineage: the cache keys of its two requests. Responses go through the engine's
cache first, so a re-run with unchanged inputs calls no model, and the model is not even loaded.

The stage's previous output is a cache too: a teammate who pulled ``completions.jsonl`` with
``dvc pull`` but not the local ``.cotdistill/`` cache, or who lost that cache, has its
responses restored from the records' lineage keys (:func:`restorable`) before anything is
asked, so raising ``teacher.samples`` from 2 to 4 buys samples 2 and 3 only.
"""

from __future__ import annotations

from pathlib import Path

from cotdistill import answers, prompts
from cotdistill.params import TeacherParams
from cotdistill.records import PreparedExample, TeacherCompletion, Usage
from cotdistill.teachers.base import Backend, Completion, Outcome
from cotdistill.teachers.cache import ResponseCache
from cotdistill.teachers.engine import (
    CallStats,
    TeacherIncomplete,
    answer_step,
    ask_answers,
    cached_complete,
    incomplete_message,
    make_budget,
    rationale_step,
    request_key,
)


def restorable(records: list[TeacherCompletion]) -> dict[str, dict]:
    """The cache entries that records carrying their requests' keys stand for.

    A record keeps one usage for its two calls: the restored rationale carries all of it and
    the restored answer none, so a record made again from them has the same usage."""
    entries: dict[str, dict] = {}
    for record in records:
        lineage = record.lineage or {}
        rationale_key, answer_key = lineage.get("rationale_key"), lineage.get("answer_key")
        if not isinstance(rationale_key, str):
            continue  # replayed, or written before records carried their keys
        usage = record.usage
        entries[rationale_key] = vars(Completion(
            text=lineage.get("rationale_raw", record.rationale),
            prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
            top_logprobs=record.top_logprobs, tokens=record.tokens, usd=usage.usd))
        if isinstance(answer_key, str):  # one call only: a few-shot rationale that stated it
            entries[answer_key] = vars(Completion(text=record.answer_text, prompt_tokens=0,
                                                  completion_tokens=0))
    return entries


def run_teacher(
    examples: list[PreparedExample], params: TeacherParams, backend: Backend, cache_path: Path,
    previous: list[TeacherCompletion] | None = None, tasks: prompts.Tasks | None = None,
) -> tuple[list[TeacherCompletion], CallStats]:
    """Two-step zero-shot-CoT with ``params.samples`` samples per question, each question
    asked with its dataset's prompts (``tasks``; the defaults where it gives none).

    ``previous`` (the stage's last output) is restored into the cache first. Raises
    :class:`TeacherIncomplete` (after storing everything that came back) when any request
    failed or was refused by ``teacher.max_usd``.
    """
    stats = CallStats()
    budget = make_budget(params, backend)
    cache = ResponseCache(cache_path)
    try:
        if previous:
            stats.restored = cache.restore(restorable(previous))
        pairs = [(ex, s) for ex in examples for s in range(params.samples)]
        rs, ans = rationale_step(params), answer_step(params)
        before = stats.totals()
        rationales = cached_complete(
            backend, cache,
            [(prompts.reasoning_prompt(ex.question, prompts.of(tasks, ex.dataset)), s)
             for ex, s in pairs], stats,
            max_tokens=rs.max_tokens, temperature=rs.temperature, seed=rs.seed, stop=rs.stop,
            budget=budget,
        )
        stats.mark("rationale", before)
        before = stats.totals()
        answered = [i for i, r in enumerate(rationales) if isinstance(r, Completion)]
        answer_texts = ask_answers(backend, cache, pairs, rationales, answered, stats, ans,
                                   budget, tasks)
        stats.mark("answer", before)
    finally:
        cache.close()
    if stats.failed or stats.not_sent or len(answer_texts) < len(pairs):
        raise TeacherIncomplete(incomplete_message(stats, budget, len(pairs)), stats)
    records = [_record(example, sample, rationale, answer_texts[index], params, backend,
                       prompts.of(tasks, example.dataset))
               for index, ((example, sample), rationale) in enumerate(zip(pairs, rationales))]
    return records, stats


def _record(example: PreparedExample, sample: int, rationale: Outcome, answer: Outcome,
            params: TeacherParams, backend: Backend, task: prompts.TaskPrompts
            ) -> TeacherCompletion:
    """One two-step completion, with the cache keys of both requests as its lineage (so a
    lost cache can be restored from the stage's output)."""
    assert isinstance(rationale, Completion) and isinstance(answer, Completion)
    rs, ans = rationale_step(params), answer_step(params)
    prediction = answers.extract(answer.text, example.answer_type, example.choices)
    return TeacherCompletion(
        id=example.id, dataset=example.dataset, sample=sample, backend=backend.name,
        model=backend.model, prompt_id=task.prompt_id,
        sampling={"temperature": params.temperature, "seed": params.seed,
                  "max_rationale_tokens": params.max_rationale_tokens,
                  "max_answer_tokens": params.max_answer_tokens},
        rationale=rationale.text.strip(), answer_text=answer.text.strip(),
        prediction=prediction,
        correct=answers.is_correct(prediction, example.answer, example.answer_type),
        usage=Usage(
            calls=2,
            prompt_tokens=rationale.prompt_tokens + answer.prompt_tokens,
            completion_tokens=rationale.completion_tokens + answer.completion_tokens,
            usd=round(rationale.usd + answer.usd, 10),
        ),
        top_logprobs=rationale.top_logprobs, tokens=rationale.tokens,
        lineage={
            "rationale_key": request_key(
                backend, prompts.reasoning_prompt(example.question, task), sample, rs),
            "answer_key": request_key(backend, prompts.answer_prompt(
                example.question, rationale.text, example.answer_type, example.choices, task),
                sample, ans)},
    )
