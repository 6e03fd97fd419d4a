"""Socratic CoT students (Shridhar et al. 2023): training examples and the inference loop.

Three students learn from decompositions (:mod:`cotdistill.methods.socratic.decompositions`):

- the question generator **QG**: problem + sub-questions so far -> the next sub-question, and
  after the last one the end marker :data:`END`, so that it learns when to stop;
- the sub-question solver **QA**: problem + earlier (sub-question, sub-answer) pairs + the
  current sub-question -> its sub-answer. Earlier answers are *teacher-forced*: they are the
  decomposition's own answers, in the prompt, so they carry no loss;
- the **unified** model: one model that writes each sub-question and its answer in turn.

Every example is a :class:`~cotdistill.records.CuratedExample` (``input`` prompt, ``target``
with the loss), trained by :func:`cotdistill.student.training.train_student` like any other method.
Prompts share one layout, the problem and then numbered lines::

    <problem>
    Q1: <sub-question 1>
    A1: <sub-answer 1>
    Q2:

QG prompts leave out the ``A`` lines (QG sees only sub-questions, as in the paper). At
inference QG proposes, QA answers, until QG writes :data:`END` or ``max_steps`` pairs have
been made (:func:`run_loop`, batched over questions: one QG call and one QA call per step for
all questions still running). The final answer is read from the last sub-answer with the
answer library, and the whole transcript is kept with the prediction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from cotdistill import answers
from cotdistill.methods.socratic.decompositions import Decomposition, final_answer
from cotdistill.prompts.socratic import (
    END,
    STUDENT_STOPS,
    Pair,
    one_line,
    qa_prompt,
    qg_prompt,
    transcript_lines,
    unified_prompt,
    unified_target,
)
from cotdistill.records import CuratedExample, Prediction, PreparedExample

Role = Literal["qg", "qa", "unified"]
ROLES: tuple[Role, ...] = ("qg", "qa", "unified")
# models/<student>/<method> and the method name in curated examples, per role
ROLE_METHOD: dict[Role, str] = {
    "qg": "socratic_qg", "qa": "socratic_qa", "unified": "socratic_unified"}
# evaluation methods (reports/eval/<student>/<method>)
PAIR_METHOD = "socratic"
UNIFIED_METHOD = "socratic_unified"

# --- training examples ---------------------------------------------------------------------------


def _example(decomposition: Decomposition, role: Role, step: int, prompt: str,
             target: str) -> CuratedExample:
    return CuratedExample(
        id=f"{decomposition.id}.{step}", dataset=decomposition.dataset, method=ROLE_METHOD[role],
        source=decomposition.lineage, input=prompt, target=target,
    )


def qg_examples(question: str, decomposition: Decomposition) -> list[CuratedExample]:
    """One example per sub-question, plus one whose target is :data:`END`."""
    sub_questions = [sub_question for sub_question, _ in decomposition.pairs]
    targets = [*sub_questions, END]
    return [
        _example(decomposition, "qg", step, qg_prompt(question, sub_questions[:step]),
                 f" {target}")
        for step, target in enumerate(targets)
    ]


def qa_examples(question: str, decomposition: Decomposition) -> list[CuratedExample]:
    """One example per sub-answer; the answers before it are in the prompt (teacher forcing)."""
    pairs = decomposition.pairs
    return [
        _example(decomposition, "qa", step, qa_prompt(question, pairs[:step], sub_question),
                 f" {sub_answer}")
        for step, (sub_question, sub_answer) in enumerate(pairs)
    ]


def unified_examples(question: str, decomposition: Decomposition) -> list[CuratedExample]:
    """One example per pair (sub-question and its answer), plus one whose target is END."""
    pairs = decomposition.pairs
    steps: list[Pair | None] = [*pairs, None]
    return [
        _example(decomposition, "unified", step, unified_prompt(question, pairs[:step]),
                 unified_target(step + 1, pair))
        for step, pair in enumerate(steps)
    ]


BUILDERS: dict[Role, Callable[[str, Decomposition], list[CuratedExample]]] = {
    "qg": qg_examples, "qa": qa_examples, "unified": unified_examples}


def training_examples(
    role: Role, decompositions: Sequence[Decomposition], questions: dict[str, str],
) -> list[CuratedExample]:
    """Every ``role`` example of ``decompositions``; ``questions`` maps example id -> problem."""
    build = BUILDERS[role]
    return [example for d in decompositions for example in build(questions[d.id], d)]


# --- the inference loop ---------------------------------------------------------------------

Complete = Callable[[list[str]], list[str]]  # prompts -> completions, same order
StopReason = Literal["end", "limit", "empty", "malformed"]


@dataclass
class Transcript:
    """One problem's Socratic run: the pairs made and why the loop stopped."""

    question: str
    pairs: list[Pair] = field(default_factory=list)
    stop: StopReason | None = None  # None while running
    rejected: str | None = None  # the raw output that stopped an "empty" / "malformed" run

    @property
    def steps(self) -> int:
        return len(self.pairs)

    @property
    def hit_limit(self) -> bool:
        return self.stop == "limit"

    @property
    def final_text(self) -> str:
        """The last sub-answer: where the final answer is read from."""
        return self.pairs[-1][1] if self.pairs else ""

    def render(self) -> str:
        """The transcript as saved in a prediction's ``output``."""
        lines = transcript_lines("", self.pairs, with_answers=True)[1:]
        marker = {"end": END, "limit": "[STEP LIMIT]", "empty": "[EMPTY SUB-QUESTION]",
                  "malformed": "[MALFORMED STEP]", None: "[RUNNING]"}[self.stop]
        if self.rejected is not None:  # kept, escaped to one line, to see what went wrong
            marker += " " + json.dumps(self.rejected, ensure_ascii=False)
        lines.append(marker)
        return "\n".join(lines)


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0].strip()


def _is_end(text: str) -> bool:
    return _first_line(text).startswith(END)


def run_loop(questions: Sequence[str], propose: Complete, answer: Complete,
             max_steps: int) -> list[Transcript]:
    """QG (``propose``) and QA (``answer``) take turns for every question at once.

    Each step asks QG for the next sub-question of every question still running, stops those
    that answered :data:`END` (or nothing), and asks QA to answer the rest. A question still
    running after ``max_steps`` pairs stops with ``"limit"``.
    """
    transcripts = [Transcript(question) for question in questions]
    for _ in range(max_steps):
        running = [t for t in transcripts if t.stop is None]
        if not running:
            break
        proposals = propose([qg_prompt(t.question, [q for q, _ in t.pairs]) for t in running])
        asking: list[tuple[Transcript, str]] = []
        for transcript, proposal in zip(running, proposals, strict=True):
            if _is_end(proposal):
                transcript.stop = "end"
            elif not _first_line(proposal):
                transcript.stop, transcript.rejected = "empty", proposal
            else:
                asking.append((transcript, _first_line(proposal)))
        if asking:
            replies = answer([qa_prompt(t.question, t.pairs, q) for t, q in asking])
            for (transcript, sub_question), reply in zip(asking, replies, strict=True):
                transcript.pairs.append((sub_question, _first_line(reply)))
    for transcript in transcripts:
        if transcript.stop is None:
            transcript.stop = "limit"
    return transcripts


_ANSWER_LABEL = re.compile(r"\s*\bA\d+\s*:\s*")


def run_unified_loop(questions: Sequence[str], write: Complete,
                     max_steps: int) -> list[Transcript]:
    """The unified model writes ``<sub-question>\\nA<k>: <sub-answer>`` (or END) per step."""
    transcripts = [Transcript(question) for question in questions]
    for _ in range(max_steps):
        running = [t for t in transcripts if t.stop is None]
        if not running:
            break
        outputs = write([unified_prompt(t.question, t.pairs) for t in running])
        for transcript, output in zip(running, outputs, strict=True):
            if _is_end(output):
                transcript.stop = "end"
                continue
            # the answer label is searched, not expected after a line break: T5-style
            # tokenizers write no newlines
            label = _ANSWER_LABEL.search(output)
            sub_question = one_line(output[:label.start()] if label else output)
            sub_answer = _first_line(output[label.end():]) if label else ""
            if not sub_question:
                transcript.stop, transcript.rejected = "empty", output
            elif not sub_answer:
                transcript.stop, transcript.rejected = "malformed", output  # no answer
            else:
                transcript.pairs.append((sub_question, sub_answer))
    for transcript in transcripts:
        if transcript.stop is None:
            transcript.stop = "limit"
    return transcripts


# --- scoring ---------------------------------------------------------------------------------


def predictions(examples: Sequence[PreparedExample], transcripts: Sequence[Transcript],
                student: str, method: str) -> list[Prediction]:
    """Score each transcript's last sub-answer; the transcript is the prediction's output."""
    scored = []
    for example, transcript in zip(examples, transcripts, strict=True):
        predicted = (final_answer(transcript.final_text, example.answer_type, example.choices)
                     if transcript.pairs else None)
        scored.append(Prediction(
            id=example.id, dataset=example.dataset, student=student, method=method,
            output=transcript.render(), prediction=predicted, answer=example.answer,
            correct=answers.is_correct(predicted, example.answer, example.answer_type),
        ))
    return scored


def loop_metrics(transcripts: Sequence[Transcript], max_steps: int) -> dict:
    """Mean loop steps and the share of runs stopped by the step limit (and by other causes)."""
    n = len(transcripts)
    share = (lambda reason: sum(t.stop == reason for t in transcripts) / n) if n else (
        lambda reason: 0.0)
    return {
        "mean_steps": sum(t.steps for t in transcripts) / n if n else 0.0,
        "step_limit_share": share("limit"),
        "end_share": share("end"),
        "empty_share": share("empty"),
        "malformed_share": share("malformed"),
        "max_steps": max_steps,
    }


def local_completer(model, tokenizer, *, max_new_tokens: int, batch_size: int,
                    stop: list[str], desc: str) -> Complete:
    """A loaded causal LM as a :data:`Complete` function (greedy, batched)."""
    from cotdistill.lm.generation import generate

    def complete(prompts: list[str]) -> list[str]:
        generated = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens,
                             batch_size=batch_size, stop=stop, desc=desc)
        return [g.text for g in generated]

    return complete


STOPS: dict[Role, list[str]] = STUDENT_STOPS  # type: ignore[assignment]
