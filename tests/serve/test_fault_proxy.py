"""The fault-injection proxy (tests/support/fault_proxy.py) in front of cotdistill.serve.

The teacher tests rely on it: it forwards faithfully, answers 429 and 500 without forwarding,
stalls past a client's timeout, and cuts connections before or after the server did the work.
"""

from __future__ import annotations

import time

import httpx2
import openai
import pytest
from support.fault_proxy import FaultProxy


@pytest.fixture()
def proxy(server):
    with FaultProxy(server, stall_s=3.0) as proxy:
        yield proxy


def proxied(proxy, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key="x", **{"max_retries": 0, **kwargs})


def test_proxy_pass_forwards_faithfully(proxy, client, model_name, prompts, texts):
    body = {"model": model_name, "prompt": prompts[0], "max_tokens": 6, "temperature": 0.9,
            "seed": 5}
    assert texts(proxied(proxy).completions.create(**body)) == \
        texts(client.completions.create(**body))
    upload = proxied(proxy).files.create(file=("x.jsonl", b'{"a": 1}\n'), purpose="batch")
    assert client.files.content(upload.id).read() == b'{"a": 1}\n'  # multipart POST intact
    assert proxy.forwarded == 2 and [a[0] for a in proxy.applied] == ["pass", "pass"]


def test_proxy_429_and_500(proxy, model_name, server):
    proxy.schedule("429", "500")
    raw = httpx2.post(proxy.base_url + "/completions", json={"model": model_name, "prompt": "x"})
    assert raw.status_code == 429 and raw.headers["retry-after"] == "1"
    assert raw.json()["error"]["code"] == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError):
        proxied(proxy).completions.create(model=model_name, prompt="x", max_tokens=2)
    assert proxy.forwarded == 0
    proxy.schedule("429")
    with pytest.raises(openai.RateLimitError) as caught:
        proxied(proxy).completions.create(model=model_name, prompt="x", max_tokens=2)
    assert caught.value.response.headers["retry-after"] == "1"
    proxy.schedule("429")  # the client honours Retry-After, then gets through
    start = time.monotonic()
    result = proxied(proxy, max_retries=1).completions.create(model=model_name, prompt="x",
                                                              max_tokens=2)
    assert result.choices and time.monotonic() - start >= 0.9
    assert proxy.forwarded == 1


def test_proxy_stall_hits_the_client_timeout(proxy, model_name):
    proxy.schedule("stall")
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        proxied(proxy, timeout=0.5).completions.create(model=model_name, prompt="x",
                                                       max_tokens=2)
    assert 0.4 < time.monotonic() - start < 2.5
    assert proxy.forwarded == 0


def test_proxy_cut_connections(proxy, model_name, stats):
    proxy.schedule("cut", "cut_before")
    before = stats()["completions"].get("/v1/completions", 0)
    for _ in range(2):
        with pytest.raises(openai.APIConnectionError):
            proxied(proxy).completions.create(model=model_name, prompt="x", max_tokens=2)
    assert proxy.forwarded == 1, "cut answers after the server did the work, cut_before not"
    assert stats()["completions"]["/v1/completions"] == before + 1
    assert [a[0] for a in proxy.applied] == ["cut", "cut_before"]
    assert proxied(proxy).completions.create(model=model_name, prompt="x", max_tokens=2).choices
