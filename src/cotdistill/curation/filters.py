"""Quality filters for teacher rationales, applied by ``curate`` before formatting.

- Near-duplicates among one question's D samples: diverse reasoning only helps when the
  samples differ, and New-Fine-tune-CoT (seed 004, section 4) names excessive similarity as its
  main weakness. Similarity is TF-IDF cosine over words; a sample too similar to one already
  kept for the same question is dropped. :func:`mean_pairwise_similarity` measures diversity
  before and after.
- Length bounds (words).
- CoT-Collection-style checks: the answer stated before any reasoning, no answer at all,
  truncated text (the rationale stops mid-sentence, typically at the token limit).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from cotdistill.records import TeacherCompletion

_ENDS_A_SENTENCE = re.compile(r"""[.!?)\]"'”’]\s*$|\d\s*$""")
_ANSWER_FIRST = re.compile(r"^\W*(the answer is|answer:|\(?[A-E]\)\s|yes\b|no\b)", re.IGNORECASE)


@dataclass(frozen=True)
class FilterSettings:
    min_words: int | None = None
    max_words: int | None = None
    dedupe_threshold: float | None = None  # drop a sample at least this similar to a kept one
    drop_answer_first: bool = True
    drop_truncated: bool = True


@dataclass
class FilterReport:
    dropped: Counter = field(default_factory=Counter)  # reason -> count

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.dropped.items()))


def is_truncated(rationale: str) -> bool:
    return not _ENDS_A_SENTENCE.search(rationale)


def states_answer_first(rationale: str) -> bool:
    return bool(_ANSWER_FIRST.match(rationale))


def similarity_matrix(texts: list[str]):
    """Pairwise TF-IDF cosine similarities of ``texts`` (an n x n array)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    if not any(re.search(r"\w", text) for text in texts):
        return cosine_similarity([[0.0]] * len(texts))
    vectors = TfidfVectorizer(token_pattern=r"(?u)\b\w+\b").fit_transform(texts)
    return cosine_similarity(vectors)


def mean_pairwise_similarity(groups: list[list[str]]) -> float | None:
    """Mean over questions (with 2+ samples) of the mean similarity between their samples."""
    means = []
    for texts in groups:
        if len(texts) < 2:
            continue
        matrix = similarity_matrix(texts)
        n = len(texts)
        means.append((matrix.sum() - n) / (n * (n - 1)))
    return float(sum(means) / len(means)) if means else None


def filter_question(
    samples: list[TeacherCompletion], settings: FilterSettings, report: FilterReport
) -> list[TeacherCompletion]:
    """The samples of one question that pass every check, in sample order."""
    passing = []
    for completion in samples:
        words = len(completion.rationale.split())
        reason = None
        if completion.prediction is None:
            reason = "no_answer"
        elif settings.drop_truncated and is_truncated(completion.rationale):
            reason = "truncated"
        elif settings.drop_answer_first and states_answer_first(completion.rationale):
            reason = "answer_first"
        elif settings.min_words is not None and words < settings.min_words:
            reason = "too_short"
        elif settings.max_words is not None and words > settings.max_words:
            reason = "too_long"
        if reason:
            report.dropped[reason] += 1
        else:
            passing.append(completion)
    if settings.dedupe_threshold is None or len(passing) < 2:
        return passing
    matrix = similarity_matrix([c.rationale for c in passing])
    kept: list[int] = []
    for i in range(len(passing)):
        if any(matrix[i, j] >= settings.dedupe_threshold for j in kept):
            report.dropped["near_duplicate"] += 1
        else:
            kept.append(i)
    return [passing[i] for i in kept]
