"""The ``teacher`` stage's pass: Fine-tune-CoT's two-step zero-shot-CoT with diverse reasoning.

For every training question the teacher writes D rationales at temperature T (step 1), then
answers after the trigger "Therefore, the answer ... is" (step 2, greedy). The answer is
extracted and compared with the gold answer; every completion becomes a teacher-completion
record with its lineage. Responses go through the engine's cache first, so a re-run with
unchanged inputs calls no model, and the model is not even loaded.
"""

from __future__ import annotations

from pathlib import Path

from cotdistill import answers, prompts
from cotdistill.params import TeacherParams
from cotdistill.records import PreparedExample, TeacherCompletion, Usage
from cotdistill.teachers.base import Backend, Completion
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
)


def run_teacher(
    examples: list[PreparedExample], params: TeacherParams, backend: Backend, cache_path: Path
) -> tuple[list[TeacherCompletion], CallStats]:
    """Two-step zero-shot-CoT with ``params.samples`` samples per question.

    Raises :class:`TeacherIncomplete` (after storing everything that came back) when any
    request failed or was refused by ``teacher.max_usd``.
    """
    stats = CallStats()
    budget = make_budget(params, backend)
    cache = ResponseCache(cache_path)
    try:
        pairs = [(ex, s) for ex in examples for s in range(params.samples)]
        rs, ans = rationale_step(params), answer_step(params)
        before = stats.totals()
        rationales = cached_complete(
            backend, cache, [(prompts.reasoning_prompt(ex.question), s) for ex, s in pairs], stats,
            max_tokens=rs.max_tokens, temperature=rs.temperature, seed=rs.seed, stop=rs.stop,
            budget=budget,
        )
        stats.mark("rationale", before)
        before = stats.totals()
        answered = [i for i, r in enumerate(rationales) if isinstance(r, Completion)]
        answer_texts = ask_answers(backend, cache, pairs, rationales, answered, stats, ans,
                                   budget)
        stats.mark("answer", before)
    finally:
        cache.close()
    if stats.failed or stats.not_sent or len(answer_texts) < len(pairs):
        raise TeacherIncomplete(incomplete_message(stats, budget, len(pairs)), stats)
    records = []
    for index, ((example, sample), rationale) in enumerate(zip(pairs, rationales)):
        answer = answer_texts[index]
        assert isinstance(rationale, Completion) and isinstance(answer, Completion)
        prediction = answers.extract(answer.text, example.answer_type, example.choices)
        records.append(
            TeacherCompletion(
                id=example.id, dataset=example.dataset, sample=sample, backend=backend.name,
                model=backend.model, prompt_id=prompts.PROMPT_ID,
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
            )
        )
    return records, stats
