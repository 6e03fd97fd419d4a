"""The calculator inside decoding: where a row's text ends with arithmetic and ``=``, the next
tokens are the result's, written by :mod:`cotdistill.calculator`, not chosen by the model.

Cobbe et al. (2021) did this for GSM8K's marked computations; here the student's own plain
text is read (``5 x 3 =``), so a student trained on teacher rationales needs no markup. Per
step, :meth:`Calculating.steer` masks, in a row that has just been given a result, every token
that would extend that number (``=`` 15 must not become 150 by the model's next digit), and
:meth:`Calculating.take` replaces the model's choice by the next queued result token, or, after
the model has written a token holding ``=``, reads the row's text and queues the result's
tokens. An expression the calculator refuses (:func:`cotdistill.calculator.compute`) queues
nothing: the model's own tokens stay. The model still runs batched with its KV cache: a forced
token is fed back like any chosen one.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from cotdistill.calculator import result_for

if TYPE_CHECKING:
    import torch

SEPARATORS = (".", ",")  # a number's inner separators, which alone may follow a result
CONTEXT_TOKENS = 96  # the row's last tokens read for a pending expression (calculator.TAIL_CHARS)
_NUMBER_TAILS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def number_tail_ids(tokenizer) -> list[int]:
    """Ids of the tokens that would continue a number just written: those that begin with a
    digit, or with "." or "," and a digit. Read once per tokenizer from its vocabulary."""
    try:
        return _NUMBER_TAILS[tokenizer]
    except (KeyError, TypeError):
        pass
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    ids = [i for i, piece in enumerate(pieces)
           if piece and (piece[0].isdigit()
                         or (len(piece) > 1 and piece[0] in ".," and piece[1].isdigit()))]
    try:
        _NUMBER_TAILS[tokenizer] = ids
    except TypeError:
        pass
    return ids


class Calculating:
    """One decode call's calculator: which rows use it, and each one's queued result tokens."""

    def __init__(self, rows: Sequence[int], *, text_of: Callable[[list[int]], str],
                 encode: Callable[[str], list[int]], number_tails: list[int]) -> None:
        self.rows = list(rows)
        self.text_of, self.encode, self.number_tails = text_of, encode, number_tails
        self.queued: dict[int, list[int]] = {r: [] for r in self.rows}
        self.just_written: set[int] = set()  # rows whose last token ended a result
        self.guarded: set[int] = set()  # rows whose digits were masked at this step
        self.written: dict[int, int] = {r: 0 for r in self.rows}  # results written per row

    def steer(self, scores: torch.Tensor) -> None:
        """Before the choice: a result just written is complete, so no digit may extend it
        (nor a "." or "," and then a digit: "= 11" must not become "11.33")."""
        for r in self.just_written:
            scores[r, self.number_tails] = float("-inf")
        self.guarded, self.just_written = self.just_written, set()

    def take(self, chosen: torch.Tensor, history: Callable[[int], list[int]],
             finished: Callable[[int], bool]) -> None:
        """After the choice: force queued result tokens, or queue a result where the row's text
        now ends with a computable expression and ``=``. ``history(r)``: row r's generated ids
        before this step."""
        for r in self.rows:
            if finished(r):
                continue
            if r in self.guarded and self.text_of([int(chosen[r])]) in SEPARATORS:
                self.just_written.add(r)  # the digit after "." or "," is still not its own
            if self.queued[r]:
                chosen[r] = self.queued[r].pop(0)
                if not self.queued[r]:
                    self.just_written.add(r)
                continue
            token = int(chosen[r])
            if "=" not in self.text_of([token]):
                continue
            text = self.text_of([*history(r)[-CONTEXT_TOKENS:], token])
            result = result_for(text)
            if result is None:
                continue
            if text[-1:].isspace():
                result = result.lstrip()
            self.queued[r] = self._tokens(text, result)
            self.written[r] += 1

    def _tokens(self, text: str, result: str) -> list[int]:
        """The result's tokens as the tokenizer writes them after this text (so that a student
        sees the ids it was trained on), else the result tokenized alone."""
        context = text[-32:]
        before, after = self.encode(context), self.encode(context + result)
        if after[:len(before)] == before and len(after) > len(before):
            return after[len(before):]
        return self.encode(result)
