"""Every teacher backend by its ``teacher.backend`` name.

Adding a backend: its module in this package (a class with ``name``, ``asks_model``,
``batch_priced``, ``prompt_api``, ``identity``, ``from_params`` and ``complete``; see
:class:`cotdistill.teachers.base.Backend`), one line here, its name in the ``teacher.backend``
Literal of :mod:`cotdistill.params.teacher` with the params it needs, and its test.
"""

from __future__ import annotations

from pathlib import Path

from cotdistill.params import TeacherParams
from cotdistill.teachers.base import Backend
from cotdistill.teachers.openai import OpenAIBackend
from cotdistill.teachers.openai_batch import OpenAIBatchBackend
from cotdistill.teachers.replay import ReplayBackend
from cotdistill.teachers.transformers import TransformersBackend

BACKENDS = {
    "transformers": TransformersBackend,  # a local model, in-process
    "openai": OpenAIBackend,  # any OpenAI-compatible endpoint, concurrent requests
    "openai_batch": OpenAIBatchBackend,  # the OpenAI Batch API: half price, within a window
    "replay": ReplayBackend,  # published completions; calls no model
}


def make_backend(params: TeacherParams, cache_path: Path | None = None) -> Backend:
    """The backend ``teacher.backend`` names (``cache_path``: the response cache, where the
    Batch API backend also keeps its jobs; the other backends do not need it)."""
    return BACKENDS[params.backend].from_params(params, cache_path)
