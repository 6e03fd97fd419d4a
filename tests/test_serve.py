"""The OpenAI-compatible server (cotdistill.serve) against the official openai client, for real.

Everything runs on loopback with the tiny model: completions, chat, logprobs, determinism,
dynamic batching, the Batch API, and the fault-injection proxy that the teacher tests use.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import httpx2
import openai
import pytest

from cotdistill.serve import running_server
from support.fault_proxy import FaultProxy

PROMPTS = ["Q: A coin is heads up. Ralph flips the coin. A:", "Take the last letters of"]


@pytest.fixture(scope="module")
def server(tiny_model):
    with running_server(str(tiny_model), max_batch=8, batch_window_s=0.05) as url:
        yield url


@pytest.fixture(scope="module")
def model_name(tiny_model) -> str:
    return str(tiny_model)


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server, api_key="unused", max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def stats(base_url: str) -> dict:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats", timeout=10) as answer:
        return json.load(answer)


def texts(response) -> list[str]:
    return [c.message.content if hasattr(c, "message") else c.text for c in response.choices]


def test_models_lists_the_served_model(client, model_name):
    assert [m.id for m in client.models.list().data] == [model_name]


def test_completions_n_prompts_and_usage(client, model_name, tokenizer):
    response = client.completions.create(
        model=model_name, prompt=PROMPTS, n=3, max_tokens=8, temperature=0.9, seed=1, logprobs=1
    )
    assert response.model == model_name and response.object == "text_completion"
    assert response.id and response.created > 0
    assert [c.index for c in response.choices] == list(range(6))
    assert len(set(texts(response)[:3])) > 1, "the n choices of one prompt should differ"
    assert response.usage.prompt_tokens == sum(len(tokenizer(p).input_ids) for p in PROMPTS)
    generated = 0
    for choice in response.choices:
        tokens = len(choice.logprobs.tokens)
        assert choice.finish_reason in ("stop", "length")
        if choice.finish_reason == "length":
            assert tokens == 8
        generated += tokens + (choice.finish_reason == "stop")  # + the end-of-sequence token
    assert response.usage.completion_tokens == generated
    assert response.usage.total_tokens == generated + response.usage.prompt_tokens


def test_stop_cuts_the_text(client, model_name):
    full = client.completions.create(model=model_name, prompt=PROMPTS[0], max_tokens=16,
                                     temperature=0)
    text = full.choices[0].text
    stop = next(ch for ch in text[1:] if ch.strip())
    cut = client.completions.create(model=model_name, prompt=PROMPTS[0], max_tokens=16,
                                    temperature=0, stop=[stop, "never-there"])
    assert cut.choices[0].text == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    assert cut.usage.completion_tokens < full.usage.completion_tokens or text.index(stop) > 0


def test_same_seed_same_output_other_seed_other_output(client, model_name):
    def ask(seed, prompt=PROMPTS[0], n=4):
        return texts(client.completions.create(model=model_name, prompt=prompt, n=n,
                                               max_tokens=10, temperature=1.0, seed=seed))

    first = ask(7)
    assert ask(7) == first
    assert ask(8) != first
    assert ask(7, n=2) == first[:2], "choice j does not depend on n"
    both = ask(7, prompt=[PROMPTS[0], PROMPTS[1]], n=2)
    assert both[:2] == first[:2], "choice j of a prompt does not depend on the other prompts"
    assert both[2:] != both[:2], "different prompts do not share random numbers"


def test_greedy_matches_in_process_generation(client, model_name, tiny_model):
    from cotdistill.lm.generation import generate
    from cotdistill.lm.store import load_causal_lm

    model, tok = load_causal_lm(str(tiny_model), "test", for_generation=True)
    local = generate(model, tok, PROMPTS, max_new_tokens=12, batch_size=2)
    served = client.completions.create(model=model_name, prompt=PROMPTS, max_tokens=12,
                                       temperature=0)
    assert texts(served) == [g.text for g in local]
    assert served.usage.completion_tokens == sum(g.completion_tokens for g in local)


def test_chat_logprobs_shape_and_greedy_consistency(client, model_name):
    response = client.chat.completions.create(
        model=model_name, messages=[{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "Is the coin heads up?"}],
        max_completion_tokens=6, temperature=0, logprobs=True, top_logprobs=4, n=2,
    )
    assert response.object == "chat.completion" and len(response.choices) == 2
    assert texts(response)[0] == texts(response)[1]  # greedy: every choice alike
    content = response.choices[0].logprobs.content
    assert 1 <= len(content) <= 6
    for entry in content:
        assert len(entry.top_logprobs) == 4
        values = [t.logprob for t in entry.top_logprobs]
        assert values == sorted(values, reverse=True) and all(v <= 0 for v in values)
        assert entry.token == entry.top_logprobs[0].token  # greedy picks the top token
        assert entry.logprob == pytest.approx(values[0])
    assert response.choices[0].message.role == "assistant"
    assert response.usage.total_tokens == (response.usage.prompt_tokens
                                           + response.usage.completion_tokens)


def test_completion_top_logprobs_legacy_shape(client, model_name):
    response = client.completions.create(model=model_name, prompt=PROMPTS[1], max_tokens=5,
                                         temperature=0.7, seed=3, logprobs=3)
    logprobs = response.choices[0].logprobs
    assert len(logprobs.tokens) == len(logprobs.token_logprobs) == len(logprobs.top_logprobs)
    assert all(1 <= len(top) <= 3 for top in logprobs.top_logprobs)
    assert all(lp <= 0 for lp in logprobs.token_logprobs)
    assert "".join(logprobs.tokens).startswith(response.choices[0].text) or \
        response.choices[0].finish_reason == "stop"


def test_errors_are_openai_errors(client, model_name):
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="no-such-model", prompt="x", max_tokens=2)
    with pytest.raises(openai.BadRequestError, match="context length"):
        client.completions.create(model=model_name, prompt="x", max_tokens=10_000)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=model_name, messages=[], max_tokens=2)


def test_concurrent_requests_share_generate_calls(server, client, model_name):
    messages = [[{"role": "user", "content": f"Question {i}: heads or tails?"}] for i in range(8)]
    alone = [texts(client.chat.completions.create(model=model_name, messages=m, max_tokens=8,
                                                  temperature=0.8, seed=i))
             for i, m in enumerate(messages)]
    before = stats(server)

    async def together():
        async with openai.AsyncOpenAI(base_url=server, api_key="x", max_retries=0) as aclient:
            return await asyncio.gather(*(
                aclient.chat.completions.create(model=model_name, messages=m, max_tokens=8,
                                                temperature=0.8, seed=i)
                for i, m in enumerate(messages)))

    responses = asyncio.run(together())
    after = stats(server)
    assert [texts(r) for r in responses] == alone, "batch company must not change outputs"
    assert after["completions"]["/v1/chat/completions"] - \
        before["completions"]["/v1/chat/completions"] == 8
    assert after["generate_calls"] - before["generate_calls"] <= 3
    assert after["requests"] - before["requests"] == 8


def test_batch_api_round_trip(server, client, model_name):
    lines = [{"custom_id": f"q-{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": model_name, "max_tokens": 6, "temperature": 0.5, "seed": i,
                       "messages": [{"role": "user", "content": f"Question {i}"}]}}
             for i in range(5)]
    lines.append({"custom_id": "bad", "method": "POST", "url": "/v1/chat/completions",
                  "body": {"model": "other-model", "messages": [{"role": "user", "content": "x"}]}})
    before = stats(server)
    upload = client.files.create(
        file=("requests.jsonl", "".join(json.dumps(x) + "\n" for x in lines).encode()),
        purpose="batch")
    assert client.files.retrieve(upload.id).bytes == upload.bytes > 0
    batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    assert batch.status in ("validating", "in_progress")
    deadline = time.monotonic() + 30
    while batch.status not in ("completed", "failed", "cancelled"):
        assert time.monotonic() < deadline, batch
        time.sleep(0.1)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed"
    after = stats(server)
    assert after["batch_lines"] - before["batch_lines"] == 5
    assert after["completions"] == before["completions"], "batch lines are counted apart"
    assert (batch.request_counts.total, batch.request_counts.completed,
            batch.request_counts.failed) == (6, 5, 1)
    output = [json.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()]
    assert sorted(x["custom_id"] for x in output) == [f"q-{i}" for i in range(5)]
    for entry in output:
        assert entry["response"]["status_code"] == 200 and entry["error"] is None
        i = int(entry["custom_id"].removeprefix("q-"))
        direct = client.chat.completions.create(**lines[i]["body"])
        assert entry["response"]["body"]["choices"][0]["message"]["content"] == texts(direct)[0]
    errors = [json.loads(x) for x in client.files.content(batch.error_file_id).text.splitlines()]
    assert [(e["custom_id"], e["response"]["status_code"]) for e in errors] == [("bad", 404)]


def test_batch_cancel(client, model_name):
    lines = [{"custom_id": f"c-{i}", "method": "POST", "url": "/v1/completions",
              "body": {"model": model_name, "prompt": f"{i}", "max_tokens": 64}}
             for i in range(200)]
    upload = client.files.create(
        file=("c.jsonl", "".join(json.dumps(x) + "\n" for x in lines).encode()), purpose="batch")
    batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/completions",
                                  completion_window="24h")
    cancelled = client.batches.cancel(batch.id)
    assert cancelled.status in ("cancelling", "cancelled", "completed")
    deadline = time.monotonic() + 20
    while cancelled.status == "cancelling":
        assert time.monotonic() < deadline
        time.sleep(0.1)
        cancelled = client.batches.retrieve(batch.id)
    assert cancelled.status == "cancelled"
    assert cancelled.request_counts.completed < 200


# ----------------------------------------------------------------------------- fault proxy


@pytest.fixture()
def proxy(server):
    with FaultProxy(server, stall_s=3.0) as proxy:
        yield proxy


def proxied(proxy, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key="x", **{"max_retries": 0, **kwargs})


def test_proxy_pass_forwards_faithfully(proxy, client, model_name):
    body = dict(model=model_name, prompt=PROMPTS[0], max_tokens=6, temperature=0.9, seed=5)
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


def test_proxy_cut_connections(proxy, model_name, server):
    proxy.schedule("cut", "cut_before")
    before = stats(server)["completions"].get("/v1/completions", 0)
    for _ in range(2):
        with pytest.raises(openai.APIConnectionError):
            proxied(proxy).completions.create(model=model_name, prompt="x", max_tokens=2)
    assert proxy.forwarded == 1, "cut answers after the server did the work, cut_before not"
    assert stats(server)["completions"]["/v1/completions"] == before + 1
    assert [a[0] for a in proxy.applied] == ["cut", "cut_before"]
    assert proxied(proxy).completions.create(model=model_name, prompt="x", max_tokens=2).choices
