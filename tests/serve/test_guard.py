"""One request cannot stall or break cotdistill.serve: limits, full validation, cancellation.

A real server on loopback over the tiny model, with small limits (:data:`LIMITS`) so that each
one is reached quickly. Every refusal is an OpenAI-style error with a 4xx status, and costs no
model call.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from urllib.parse import urlsplit

import httpx2
import openai
import pytest

from cotdistill.errors import CotdistillError
from cotdistill.serve import running_server
from cotdistill.serve.guard import Limits, check_exposure

LIMITS = Limits(max_body_bytes=64 << 10, max_file_bytes=128 << 10, max_request_rows=16,
                max_queued_rows=32, max_connections=64)
LONG = {"prompt": "Q: A coin is heads up.", "n": 16, "max_tokens": 480, "temperature": 1.0}


@pytest.fixture(scope="module")
def guarded(tiny_model):
    """``(base_url, model_name)`` of a server with :data:`LIMITS` and a 0.1 s batch window."""
    with running_server(str(tiny_model), max_batch=8, batch_window_s=0.1, limits=LIMITS) as url:
        yield url, str(tiny_model)


def post(url: str, path: str, body=None, *, content: bytes | None = None, **kwargs):
    return httpx2.post(url + path, json=body, content=content, timeout=30, **kwargs)


def stats(url: str) -> dict:
    return httpx2.get(url.removesuffix("/v1") + "/stats", timeout=10).json()


def assert_openai_error(answer, status: int) -> dict:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def wait_for(condition, timeout: float) -> float:
    """Seconds until ``condition()`` holds; fails after ``timeout``."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, "condition not reached in time"
        time.sleep(0.02)
    return time.monotonic() - start


def send_and_leave(url: str, body: dict) -> None:
    """Send a completion request on a raw socket, then close it without reading the answer."""
    parts = urlsplit(url)
    data = json.dumps(body).encode()
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\n"
                     + f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        time.sleep(0.3)  # queued, and its first generate call under way


# --- limits


def test_a_body_over_the_limit_is_413_and_is_never_kept(guarded):
    url, model = guarded
    big = {"model": model, "prompt": "x" * (LIMITS.max_body_bytes + 1)}
    assert_openai_error(post(url, "/completions", big), 413)
    chunks = (b"x" * 4096 for _ in range(LIMITS.max_body_bytes // 4096 + 2))  # no length
    assert_openai_error(post(url, "/completions", content=chunks), 413)
    upload = httpx2.post(url + "/files", files={"file": ("a.jsonl", b"x" * (100 << 10))},
                         data={"purpose": "batch"}, timeout=30)
    assert upload.status_code == 200, "uploads have their own, larger limit"
    too_big = httpx2.post(url + "/files", files={"file": ("a.jsonl", b"x" * (200 << 10))},
                          data={"purpose": "batch"}, timeout=30)
    assert_openai_error(too_big, 413)


def test_prompts_times_n_over_the_limit_is_400_and_costs_nothing(guarded):
    url, model = guarded
    before = stats(url)
    body = {"model": model, "prompt": ["a"] * 100, "n": 128, "max_tokens": 480}
    error = assert_openai_error(post(url, "/completions", body), 400)
    assert error["code"] == "too_many_completions" and "12800" in error["message"]
    assert post(url, "/completions", {**body, "prompt": ["a"] * 4, "n": 4,
                                      "max_tokens": 2}).status_code == 200  # 16: the limit
    assert stats(url)["generated_rows"] - before["generated_rows"] == 16, "the refused: none"


def test_a_full_queue_is_429_with_retry_after(guarded):
    url, model = guarded
    leaving = [threading.Thread(target=send_and_leave, args=(url, {"model": model, **LONG}))
               for _ in range(2)]  # 2 x 16 rows: the queue's 32
    for thread in leaving:
        thread.start()
    wait_for(lambda: stats(url)["queued_rows"] == 32, timeout=5)
    full = post(url, "/completions", {"model": model, "prompt": "x", "max_tokens": 2})
    error = assert_openai_error(full, 429)
    assert error["code"] == "queue_full" and full.headers["retry-after"] == "1"
    for thread in leaving:
        thread.join()


# --- cancellation


def test_work_is_cancelled_when_its_client_leaves(guarded):
    url, model = guarded
    start = time.monotonic()
    send_and_leave(url, {"model": model, **LONG})  # ~3 s of generation if it ran to the end
    wait_for(lambda: stats(url)["queued_rows"] == 0, timeout=1)
    calls = stats(url)["generate_calls"]
    answer = post(url, "/completions", {"model": model, "prompt": "x", "max_tokens": 4})
    assert answer.status_code == 200
    assert time.monotonic() - start < 1.5, "the running call stopped, the queued one never ran"
    assert stats(url)["generate_calls"] == calls + 1


# --- validation before batching

BAD_BODIES = {
    "token id past the vocabulary": {"prompt": [1, 2, 10**6]},
    "negative token id": {"prompt": [[1, 2], [-1]]},
    "boolean token ids": {"prompt": [True, False]},
    "n zero": {"prompt": "x", "n": 0},
    "n as a string": {"prompt": "x", "n": "2"},
    "max_tokens zero": {"prompt": "x", "max_tokens": 0},
    "max_tokens a float": {"prompt": "x", "max_tokens": 1.5},
    "max_tokens past the context": {"prompt": "x", "max_tokens": 10**30},
    "temperature too high": {"prompt": "x", "temperature": 3},
    "seed too large": {"prompt": "x", "seed": 10**30},
    "too many stop strings": {"prompt": "x", "stop": ["a"] * 17},
    "prompt of the wrong type": {"prompt": {"text": "x"}},
    "empty prompt list": {"prompt": []},
    "chat content part of the wrong type": {
        "messages": [{"role": "user", "content": [{"type": "text", "text": ["x"]}]}]},
}


@pytest.mark.parametrize("case", BAD_BODIES)
def test_a_bad_request_is_400(guarded, case):
    url, model = guarded
    path = "/chat/completions" if "messages" in BAD_BODIES[case] else "/completions"
    assert_openai_error(post(url, path, {"model": model, **BAD_BODIES[case]}), 400)


def test_a_bad_request_fails_alone_in_its_dynamic_batch(guarded):
    url, model = guarded
    good = [{"model": model, "prompt": f"Question {i}", "max_tokens": 6, "temperature": 0}
            for i in range(3)]
    alone = [post(url, "/completions", body).json()["choices"][0]["text"] for body in good]
    bad = {"model": model, "prompt": [1, 2, 10**6], "max_tokens": 6}
    before = stats(url)

    async def together():
        async with httpx2.AsyncClient(timeout=30) as client:
            return await asyncio.gather(*(client.post(url + "/completions", json=body)
                                          for body in [good[0], bad, *good[1:]]))

    answers = asyncio.run(together())
    assert [a.status_code for a in answers] == [200, 400, 200, 200]
    assert [answers[i].json()["choices"][0]["text"] for i in (0, 2, 3)] == alone
    assert stats(url)["generate_calls"] - before["generate_calls"] == 1, "one shared call"


def test_deeply_nested_json_is_400(guarded):
    url, model = guarded
    nested = b"[" * 30_000 + b"]" * 30_000
    error = assert_openai_error(post(url, "/completions", content=nested), 400)
    assert "nested too deeply" in error["message"]
    assert_openai_error(post(url, "/batches", content=nested), 400)
    deep = {"model": model, "prompt": "x", "user": json.loads("[" * 500 + "]" * 500)}
    assert post(url, "/completions", deep).status_code == 200, "ignored fields may nest"


def test_huge_digits_and_bad_bytes_are_400(guarded):
    url, _ = guarded
    assert_openai_error(post(url, "/completions", content=b'{"n": ' + b"9" * 5000 + b"}"), 400)
    assert_openai_error(post(url, "/completions", content=b'{"prompt": "\xff"}'), 400)


# --- the event loop stays free


def test_tokenising_a_huge_prompt_does_not_block_other_requests(server, model_name):
    """A ~0.9 MB prompt (under the default 1 MiB body limit) takes the tokenizer most of a
    second; meanwhile ``GET /v1/models`` keeps answering within 0.4 s."""
    prompt = "Q: A coin is heads up. Ralph flips the coin. " * 20_000
    result = {}

    def big() -> None:
        result["answer"] = post(server, "/completions", {"model": model_name, "prompt": prompt})

    thread = threading.Thread(target=big)
    start = time.monotonic()
    thread.start()
    latencies = []
    with httpx2.Client(timeout=10) as client:
        while thread.is_alive():
            t = time.monotonic()
            assert client.get(server + "/models").status_code == 200
            latencies.append(time.monotonic() - t)
    took = time.monotonic() - start
    assert took > 0.3 and len(latencies) > 3, "the prompt was too quick to tokenise to tell"
    assert max(latencies) < 0.4, latencies
    assert_openai_error(result["answer"], 400)  # past the tiny model's 512-token context


# --- authentication and exposure


def test_with_an_api_key_every_request_needs_it(tiny_model):
    with running_server(str(tiny_model), api_key="s3cret") as url:
        assert_openai_error(httpx2.get(url + "/models", timeout=10), 401)
        wrong = httpx2.get(url + "/models", headers={"Authorization": "Bearer nope"}, timeout=10)
        assert_openai_error(wrong, 401)
        assert_openai_error(post(url, "/completions", {"prompt": "x"}), 401)
        client = openai.OpenAI(base_url=url, api_key="s3cret", max_retries=0)
        assert client.completions.create(model=str(tiny_model), prompt="x", max_tokens=2).choices
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url, api_key="other", max_retries=0).models.list()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_needs_no_key(host):
    check_exposure(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "example.org"])
def test_any_other_host_needs_a_key(host):
    with pytest.raises(CotdistillError, match="--api-key"):
        check_exposure(host, None)
    check_exposure(host, "a-key")
