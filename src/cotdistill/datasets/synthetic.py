"""Coin Flip and Last Letter Concatenation, generated the way they were originally built.

Wei et al. (2022) introduced both symbolic tasks and Kojima et al. (2022) released the
versions the Fine-tune-CoT benchmarks use: each question names N random US first names (the
top one thousand of the US census name lists), N = 4 by default. Coin Flip: each person flips
or does not flip a coin that starts heads up; the answer is whether it is still heads up.
Last Letters: concatenate the last letter of each name. The wording below is Kojima et al.'s.

Names come from the 1990 US census first-name files shipped in the ``names`` package (frozen
data, so the same seed gives the same questions on every machine and version).
"""

from __future__ import annotations

import functools
import random
from importlib import resources
from typing import NamedTuple


class RawExample(NamedTuple):
    """A question and its gold answer, before splitting (``choices``: the option texts)."""

    question: str
    answer: str
    choices: tuple[str, ...] | None = None
    rationale: str | None = None  # a gold rationale, where the dataset publishes one
    # gold (sub-question, sub-answer) steps, where known (Socratic CoT's gold decompositions)
    subquestions: tuple[tuple[str, str], ...] | None = None


@functools.cache
def census_first_names(top: int = 1000) -> tuple[str, ...]:
    """The ``top`` most frequent US first names (male and female lists merged by frequency)."""
    rows: list[tuple[float, str]] = []
    for filename in ("dist.male.first", "dist.female.first"):
        text = resources.files("names").joinpath(filename).read_text(encoding="utf-8")
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                rows.append((float(parts[1]), parts[0].title()))
    rows.sort(key=lambda row: (-row[0], row[1]))
    unique = list(dict.fromkeys(name for _, name in rows))
    return tuple(unique[:top])


def _name_lists(seed: int, num_examples: int, num_items: int) -> list[list[str]]:
    rng = random.Random(seed)
    pool = census_first_names()
    if num_items > len(pool):
        raise ValueError(f"num_items={num_items} exceeds the {len(pool)} available names")
    return [rng.sample(pool, num_items) for _ in range(num_examples)]


def _coin_steps(people: list[str], flips: list[bool]) -> tuple[tuple[str, str], ...]:
    """The gold decomposition: after each person's turn, is the coin still heads up?"""
    steps, heads = [], True
    for name, flip in zip(people, flips):
        heads ^= flip
        steps.append((f"After {name}'s turn, is the coin still heads up?",
                      "yes" if heads else "no"))
    return tuple(steps)


def coin_flip(seed: int, num_examples: int, num_items: int = 4) -> list[RawExample]:
    """Coin Flip questions; answer ``yes`` when the number of flips is even."""
    rng = random.Random(f"coin_flip/{seed}")
    examples = []
    for people in _name_lists(seed, num_examples, num_items):
        flips = [rng.random() < 0.5 for _ in people]
        steps = " ".join(
            f"{name} flips the coin." if flip else f"{name} does not flip the coin."
            for name, flip in zip(people, flips)
        )
        question = (
            f"A coin is heads up. {steps} Is the coin still heads up? "
            'Note that "flip" here means "reverse".'
        )
        examples.append(RawExample(question, "yes" if sum(flips) % 2 == 0 else "no",
                                   subquestions=_coin_steps(people, flips)))
    return examples


def last_letter_concatenation(seed: int, num_examples: int, num_items: int = 4) -> list[RawExample]:
    """Last Letter Concatenation questions; the answer is the lower-case concatenation."""
    examples = []
    for people in _name_lists(seed + 1, num_examples, num_items):
        question = (
            f'Take the last letters of each words in "{" ".join(people)}" and concatenate them.'
        )
        answer = "".join(name[-1] for name in people).lower()
        steps = tuple((f'What is the last letter of "{name}"?', f'"{name[-1].lower()}"')
                      for name in people)
        steps += ((f"What do the letters {', '.join(s for _, s in steps)} make when "
                   "concatenated?", answer),)
        examples.append(RawExample(question, answer, subquestions=steps))
    return examples


# the generated datasets of cotdistill.catalog, by name: (seed, num_examples, num_items) ->
# examples
GENERATORS = {
    "coin_flip_generated": coin_flip,
    "last_letter_concatenation_generated": last_letter_concatenation,
}
