"""What every teacher backend is: completions for a list of prompts, or failures, never raised.

The backends (one module each: :mod:`.transformers`, :mod:`.openai`, :mod:`.openai_batch`,
:mod:`.replay`) are looked up by ``teacher.backend`` in :mod:`cotdistill.teachers.registry`;
the stages use them only through this interface and :mod:`cotdistill.teachers.engine`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, Union

from cotdistill.lm.generation import Generated


@dataclass(frozen=True)
class Completion(Generated):
    """One generated text with its usage; ``usd`` is what the call cost when it was bought."""

    usd: float = 0.0


@dataclass(frozen=True)
class Failure:
    """A request that got no usable response. ``message`` never holds the API key."""

    error: str  # short kind: "429 RateLimitError", "timeout", "connection", "budget", ...
    message: str = ""
    attempts: int = 0


Outcome = Union[Completion, Failure]
OnBatch = Callable[[dict[int, Outcome]], None]
Admit = Callable[[int], bool]


class Backend(Protocol):
    """What the teacher stage needs from a model: completions for a list of prompts.

    ``seeds[i]`` is prompt i's sampling seed. ``admit(i)`` must be called just before prompt i
    is sent (it reserves the request's worst-case cost; False means do not send it and return
    a ``Failure("budget")``). ``on_batch`` must be called with each group of finished outcomes
    ({prompt index: outcome}) as soon as they exist, so that they are stored before anything
    else can fail. A failed request is returned as a :class:`Failure`, never raised.
    ``identity`` holds what else determines a response (base URL, API...) for the cache key.
    """

    name: str
    model: str
    identity: dict[str, Any]
    batch_priced: bool  # billed at the Batch API's discount
    asks_model: bool  # False: the backend replays published completions and calls no model
    prompt_api: str  # how a prompt is billed and counted: "chat" (a user message) or "completions"

    def complete(
        self, prompts: list[str], *, seeds: list[int], max_tokens: int, temperature: float,
        stop: list[str], on_batch: OnBatch, admit: Admit,
    ) -> list[Outcome]: ...

