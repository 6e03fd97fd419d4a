"""The data contracts between stages (DESIGN.md, "Data contracts"), one pydantic model each.

Every JSON Lines file the pipeline writes or reads is validated against one of these, so a
malformed file stops the stage with the file and line at fault instead of a KeyError later.
Files are read strictly (:func:`cotdistill.jsonl.read_records`): a value must already have its
field's type, so ``"correct": "no"`` or ``"sample": "0"`` is refused rather than converted (an
integer is still a float). Records built in Python are validated as usual.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

AnswerType = Literal["number", "choice", "yes_no", "text"]
Split = Literal["train", "val", "test"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PreparedExample(_Record):
    """One question with its normalised gold answer, in one split."""

    id: str = Field(min_length=1)
    dataset: str
    split: Split
    question: str = Field(min_length=1)
    answer: str
    answer_type: AnswerType
    choices: list[str] | None = None
    rationale: str | None = None
    subquestions: list[list[str]] | None = None


class Usage(_Record):
    calls: int = 0  # model calls that made this completion (zero-shot-CoT: rationale + answer)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usd: float = 0.0


class TeacherCompletion(_Record):
    """One teacher sample for one example, with everything needed to trace and re-create it."""

    id: str
    dataset: str
    sample: int = Field(ge=0)
    backend: str
    model: str
    prompt_id: str
    sampling: dict[str, float | int | None]
    rationale: str
    answer_text: str
    prediction: str | None
    correct: bool
    hinted: bool = False
    usage: Usage = Usage()
    # teacher.top_logprobs: per generated rationale token, the top-k {token text: logprob}, and
    # the generated tokens' texts (token-level KD aligns the two with the student's tokens)
    top_logprobs: list[dict[str, float]] | None = None
    tokens: list[str] | None = None
    # where a replayed completion was published: file, repository, commit, position in the file
    lineage: dict[str, str | int] | None = None


class TeacherResponse(_Record):
    """One teacher response that a stage bought, as its cache holds it (``key``): what the
    stage restores into a lost cache, malformed outputs included, so nothing is paid twice."""

    key: str = Field(min_length=1)
    sample: int = Field(ge=0)
    response: dict[str, Any]  # the cache entry: text, token counts, dollars


class TeacherTokens(_Record):
    """The teacher's tokens over a rationale, with their top-k log-probabilities.

    ``starts[j]`` is where ``tokens[j]`` begins in the example's target. Only tokens whose
    characters could be placed are kept (not, e.g., the pieces of a character that the
    teacher split across tokens).
    """

    starts: list[int]
    tokens: list[str]
    top_logprobs: list[dict[str, float]]


class CuratedExample(_Record):
    """A training pair for one method: ``input`` is the prompt, ``target`` carries the loss."""

    id: str
    dataset: str
    method: str
    source: str | None  # "<id>#<sample>" of the teacher completion; None for gold-only methods
    input: str
    target: str
    task: str | None = None  # multi-task methods: which task ("answer", "rationale")
    weight: float | None = None  # loss weight (curate.hinted downweight); None: 1
    # the teacher's token distribution over the rationale in ``target`` (teacher.top_logprobs),
    # for token-level KD (train.hparams.kd.source: logprobs); None when not stored
    teacher_tokens: TeacherTokens | None = None
    # what curate changed in the teacher's rationale: {"fixed_arithmetic": [{expression,
    # teacher, calculator}]} (curate.teacher_arithmetic: fix); None: the teacher's own text
    lineage: dict[str, list[dict[str, str]]] | None = None


class Prediction(_Record):
    """A student's answer to one test question."""

    id: str
    dataset: str
    student: str
    method: str
    output: str
    prediction: str | None
    answer: str
    correct: bool


class ClusteredExemplar(_Record):
    """One few-shot exemplar of New-Fine-tune-CoT (``data/exemplars.jsonl``): the question
    nearest its k-means cluster's centre whose teacher rationale was correct."""

    dataset: str
    cluster: int
    rank: int  # position of the chosen question in its cluster's distance order (0: nearest)
    distance: float  # to the cluster centre
    id: str
    question: str
    rationale: str
    answer: str
    source: str  # "<id>#<sample>": the zero-shot-CoT completion it came from
