"""The ``curate`` stage: keep the teacher's correct rationales and format training examples.

Fine-tune-CoT keeps a completion only when its extracted answer equals the gold answer; each
kept completion becomes ``{q} ###`` -> `` {rationale} --> {answer}``. The answer-only baseline
uses every training question with its gold answer. Before formatting, the quality filters of
:mod:`cotdistill.curation.filters` run over each question's correct samples (all optional).
Statistics, with what each filter dropped and the samples' diversity before and after, go to
``reports/curate.json``.

Usage: ``cotdistill curate``.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from cotdistill import prompts
from cotdistill.curation.arithmetic import ArithmeticReport, check, fix
from cotdistill.curation.filters import (
    FilterReport,
    FilterSettings,
    filter_question,
    mean_pairwise_similarity,
)
from cotdistill.methods.registry import METHODS
from cotdistill.params import CurateParams
from cotdistill.params.train import MethodParams
from cotdistill.records import CuratedExample, PreparedExample, TeacherCompletion
from cotdistill.student.kd import teacher_tokens


def select_rationales(
    examples: list[PreparedExample], completions: list[TeacherCompletion], params: CurateParams,
    report: FilterReport | None = None, arithmetic: ArithmeticReport | None = None,
) -> dict[str, list[TeacherCompletion]]:
    """Per question id, its correct samples that pass the filters, capped, in sample order.
    The correct rationales of number questions have their arithmetic checked first
    (``arithmetic`` counts; ``curate.teacher_arithmetic: drop`` drops the wrong ones)."""
    report = report if report is not None else FilterReport()
    arithmetic = arithmetic or ArithmeticReport(policy=params.teacher_arithmetic)
    numbers = {example.id for example in examples if example.answer_type == "number"}
    settings = FilterSettings(
        min_words=params.min_rationale_words, max_words=params.max_rationale_words,
        dedupe_threshold=params.dedupe_threshold, drop_answer_first=params.drop_answer_first,
        drop_truncated=params.drop_truncated,
    )
    known = {example.id for example in examples}
    correct: dict[str, list[TeacherCompletion]] = defaultdict(list)
    for completion in sorted(completions, key=lambda c: (c.id, c.sample)):
        if completion.hinted and params.hinted == "drop":
            report.dropped["hinted"] += 1
            continue
        if completion.id in known and completion.correct and completion.rationale:
            if completion.id in numbers and not check(completion.rationale, arithmetic):
                report.dropped["wrong_arithmetic"] += 1
                continue
            correct[completion.id].append(completion)
    kept = {}
    for question, samples in correct.items():
        passing = filter_question(samples, settings, report)
        if params.max_per_question is not None and len(passing) > params.max_per_question:
            report.dropped["over_cap"] += len(passing) - params.max_per_question
            passing = passing[: params.max_per_question]
        if passing:
            kept[question] = passing
    return kept


def curate(
    examples: list[PreparedExample], completions: list[TeacherCompletion], params: CurateParams,
    report: FilterReport | None = None, fewshot: list[TeacherCompletion] | None = None,
    tasks: prompts.Tasks | None = None, arithmetic: ArithmeticReport | None = None,
    exemplars: dict[str, list[dict]] | None = None, method_params: MethodParams | None = None,
) -> dict[str, list[CuratedExample]]:
    """Curated training examples for every method, in question then sample order.

    Methods whose rationales come from the few-shot teacher pass (``new_fine_tune_cot``) get
    the same filters over ``fewshot``, and are left out when it is None. A hinted completion
    (answer-hint rationalization) is kept, dropped, or kept with loss weight
    ``params.hint_weight``, as ``params.hinted`` says. With ``params.teacher_arithmetic: fix``
    a number question's rationale gets the calculator's results in place of wrong ones, and
    its examples say so in their ``lineage``. Methods that put exemplars in context
    (``fine_tune_cot_mixed``) get ``exemplars`` (the exemplars stage's, by dataset; never the
    question's own) and ``method_params``, and are left out when ``exemplars`` is None.
    """
    kept = {"zero_shot": select_rationales(examples, completions, params, report, arithmetic)}
    if fewshot is not None:
        kept["few_shot"] = select_rationales(examples, fewshot, params, FilterReport())
    out: dict[str, list[CuratedExample]] = {}
    fixed: dict[tuple[str, str, int], tuple[TeacherCompletion, dict | None]] = {}
    for name, method in METHODS.items():
        if method.rationales not in kept or (method.uses_exemplars and exemplars is None):
            continue
        rows = []
        for example in examples:
            question = prompts.of(tasks, example.dataset).student_question(example.question)
            sources = (kept[method.rationales].get(example.id, []) if method.uses_rationale
                       else [None])
            for completion in sources:
                lineage = None
                if (completion is not None and params.teacher_arithmetic == "fix"
                        and example.answer_type == "number"):
                    key = (method.rationales, completion.id, completion.sample)
                    if key not in fixed:  # once per rationale, not once per method
                        fixed[key] = _fixed(completion)
                    completion, lineage = fixed[key]
                for text, target, task in _pairs(
                    method, example, question, completion, exemplars, method_params, tasks
                ):
                    rows.append(CuratedExample(
                        id=example.id, dataset=example.dataset, method=name,
                        source=f"{completion.id}#{completion.sample}" if completion else None,
                        input=text, target=target, task=task,
                        weight=(params.hint_weight if completion is not None and completion.hinted
                                and params.hinted == "downweight" else None),
                        teacher_tokens=(teacher_tokens(completion, target)
                                        if completion is not None else None),
                        lineage=lineage,
                    ))
        out[name] = rows
    return out


def _pairs(method, example: PreparedExample, question: str,
           completion: TeacherCompletion | None, exemplars: dict[str, list[dict]] | None,
           method_params: MethodParams | None,
           tasks: prompts.Tasks | None) -> list[tuple[str, str, str | None]]:
    """The method's (input, target, task) pairs for one question and rationale."""
    rationale = completion.rationale if completion else None
    if not method.uses_exemplars or completion is None:
        return method.examples(question, example.answer, rationale)
    shots = [shot for shot in (exemplars or {}).get(example.dataset, [])
             if shot["id"] != example.id]
    return method.mixed_examples(question, example.answer, rationale,
                                 key=f"{completion.id}#{completion.sample}", shots=shots,
                                 settings=method_params or MethodParams(),
                                 task=prompts.of(tasks, example.dataset))


def _fixed(completion: TeacherCompletion) -> tuple[TeacherCompletion, dict | None]:
    """The completion with its wrong arithmetic fixed, and the lineage entry (None: nothing
    was wrong)."""
    rationale, fixes = fix(completion.rationale)
    if not fixes:
        return completion, None
    return completion.model_copy(update={"rationale": rationale}), {"fixed_arithmetic": fixes}


def diversity(
    completions: list[TeacherCompletion], kept: dict[str, list[TeacherCompletion]]
) -> dict[str, float | None]:
    """Mean pairwise similarity of each question's correct samples, before and after filters
    (lower is more diverse; None with fewer than two samples per question)."""
    before: dict[str, list[str]] = defaultdict(list)
    for completion in completions:
        if completion.correct and completion.rationale:
            before[completion.id].append(completion.rationale)
    return {
        "similarity_before": mean_pairwise_similarity(list(before.values())),
        "similarity_after": mean_pairwise_similarity(
            [[c.rationale for c in samples] for samples in kept.values()]),
    }


def teacher_cost(completions: list[TeacherCompletion], accepted: int) -> dict[str, float | int]:
    """What the rationales cost: calls, tokens, dollars, and per accepted rationale."""
    calls = sum(c.usage.calls for c in completions)
    prompt = sum(c.usage.prompt_tokens for c in completions)
    completion = sum(c.usage.completion_tokens for c in completions)
    usd = sum(c.usage.usd for c in completions)
    per = max(accepted, 1)
    return {"calls": calls, "prompt_tokens": prompt, "completion_tokens": completion,
            "usd": round(usd, 6), "calls_per_accepted": calls / per if accepted else None,
            "tokens_per_accepted": (prompt + completion) / per if accepted else None,
            "usd_per_accepted": round(usd / per, 6) if accepted else None}


def curation_stats(
    examples: list[PreparedExample], completions: list[TeacherCompletion],
    curated: dict[str, list[CuratedExample]], method: str = "fine_tune_cot",
) -> dict:
    """Teacher accuracy and kept rationales (``method``'s rows), overall and per dataset."""
    asked = {completion.id for completion in completions}
    kept_per_question = Counter(row.id for row in curated.get(method, []))
    stats: dict = {"datasets": {}}
    for dataset in sorted({example.dataset for example in examples}):
        ids = [e.id for e in examples if e.dataset == dataset and e.id in asked]
        mine = [c for c in completions if c.dataset == dataset and not c.hinted]
        correct = sum(c.correct for c in mine)
        kept = [kept_per_question.get(i, 0) for i in ids]
        stats["datasets"][dataset] = {
            "questions": len(ids),
            "completions": len(mine),
            "teacher_accuracy": correct / len(mine) if mine else 0.0,
            "kept_rationales": sum(kept),
            "kept_per_question": sum(kept) / len(ids) if ids else 0.0,
            "questions_with_a_kept_rationale": sum(1 for k in kept if k),
        }
    unhinted = [c for c in completions if not c.hinted]  # a hint makes the answer right
    total = len(unhinted)
    stats["teacher_accuracy"] = sum(c.correct for c in unhinted) / total if total else 0.0
    stats["hinted"] = len(completions) - total
    stats["kept_rationales"] = sum(kept_per_question.values())
    stats["cost"] = teacher_cost(completions, stats["kept_rationales"])
    stats["examples"] = {method: len(rows) for method, rows in curated.items()}
    # examples carrying the teacher's token log-probabilities (teacher.top_logprobs), for KD
    stats["examples_with_teacher_logprobs"] = {
        method: sum(row.teacher_tokens is not None for row in rows)
        for method, rows in curated.items()}
    return stats
