"""What the serve tests share: one server on loopback over the tiny model, an openai client.

The server is started once for the whole folder (package scope); the tests that count model
calls or requests compare ``/stats`` before and after, so they do not depend on the order.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable

import openai
import pytest

from cotdistill.serve import running_server

PROMPTS = ["Q: A coin is heads up. Ralph flips the coin. A:", "Take the last letters of"]


@pytest.fixture(scope="package")
def server(tiny_model):
    with running_server(str(tiny_model), max_batch=8, batch_window_s=0.05) as url:
        yield url


@pytest.fixture(scope="package")
def model_name(tiny_model) -> str:
    return str(tiny_model)


@pytest.fixture(scope="package")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server, api_key="unused", max_retries=0, timeout=30)


@pytest.fixture(scope="package")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="package")
def prompts() -> list[str]:
    return PROMPTS


@pytest.fixture(scope="package")
def stats(server) -> Callable[[], dict]:
    """``stats()``: the server's ``GET /stats`` now."""

    def read() -> dict:
        with urllib.request.urlopen(server.removesuffix("/v1") + "/stats", timeout=10) as answer:
            return json.load(answer)

    return read


@pytest.fixture(scope="package")
def texts() -> Callable[[object], list[str]]:
    """``texts(response)``: the text of each choice of a completion or chat completion."""

    def of(response) -> list[str]:
        return [c.message.content if hasattr(c, "message") else c.text
                for c in response.choices]

    return of
