"""The ``curate`` stage: keep the teacher's correct rationales and format training examples.

Fine-tune-CoT keeps a completion only when its extracted answer equals the gold answer; each
kept completion becomes ``{q} ###`` -> `` {rationale} --> {answer}``. The answer-only baseline
uses every training question with its gold answer. Statistics go to ``reports/curate.json``.

Usage: ``cotdistill curate``.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from cotdistill.methods import METHODS
from cotdistill.params import CurateParams
from cotdistill.records import CuratedExample, PreparedExample, TeacherCompletion


def curate(
    examples: list[PreparedExample], completions: list[TeacherCompletion], params: CurateParams
) -> dict[str, list[CuratedExample]]:
    """Curated training examples for every method, in question then sample order."""
    by_id = {example.id: example for example in examples}
    kept: dict[str, list[TeacherCompletion]] = defaultdict(list)
    for completion in sorted(completions, key=lambda c: (c.id, c.sample)):
        if completion.id not in by_id or not completion.correct or not completion.rationale:
            continue
        if params.max_per_question is None or len(kept[completion.id]) < params.max_per_question:
            kept[completion.id].append(completion)
    out: dict[str, list[CuratedExample]] = {}
    for name, method in METHODS.items():
        rows = []
        for example in examples:
            sources = kept.get(example.id, []) if method.uses_rationale else [None]
            for completion in sources:
                rows.append(
                    CuratedExample(
                        id=example.id, dataset=example.dataset, method=name,
                        source=f"{completion.id}#{completion.sample}" if completion else None,
                        input=method.format_input(example.question),
                        target=method.format_target(
                            example.answer, completion.rationale if completion else None
                        ),
                    )
                )
        out[name] = rows
    return out


def curation_stats(
    examples: list[PreparedExample], completions: list[TeacherCompletion],
    curated: dict[str, list[CuratedExample]],
) -> dict:
    """Teacher accuracy and kept rationales, overall and per dataset."""
    asked = {completion.id for completion in completions}
    kept_per_question = Counter(row.id for row in curated.get("fine_tune_cot", []))
    stats: dict = {"datasets": {}}
    for dataset in sorted({example.dataset for example in examples}):
        ids = [e.id for e in examples if e.dataset == dataset and e.id in asked]
        mine = [c for c in completions if c.dataset == dataset]
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
    total = len(completions)
    stats["teacher_accuracy"] = sum(c.correct for c in completions) / total if total else 0.0
    stats["kept_rationales"] = sum(kept_per_question.values())
    stats["examples"] = {method: len(rows) for method, rows in curated.items()}
    return stats
