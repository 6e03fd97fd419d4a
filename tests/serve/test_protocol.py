"""The OpenAI protocol of cotdistill.serve against the official openai client, for real.

Completions and chat completions: n, several prompts, usage, stop strings, and both logprobs
shapes (chat's ``content`` list, the completions API's legacy lists).
"""

from __future__ import annotations

import pytest


def test_completions_n_prompts_and_usage(client, model_name, tokenizer, prompts, texts):
    response = client.completions.create(
        model=model_name, prompt=prompts, n=3, max_tokens=8, temperature=0.9, seed=1, logprobs=1
    )
    assert response.model == model_name and response.object == "text_completion"
    assert response.id and response.created > 0
    assert [c.index for c in response.choices] == list(range(6))
    assert len(set(texts(response)[:3])) > 1, "the n choices of one prompt should differ"
    assert response.usage.prompt_tokens == sum(len(tokenizer(p).input_ids) for p in prompts)
    generated = 0
    for choice in response.choices:
        tokens = len(choice.logprobs.tokens)
        assert choice.finish_reason in ("stop", "length")
        if choice.finish_reason == "length":
            assert tokens == 8
        generated += tokens + (choice.finish_reason == "stop")  # + the end-of-sequence token
    assert response.usage.completion_tokens == generated
    assert response.usage.total_tokens == generated + response.usage.prompt_tokens


def test_stop_cuts_the_text(client, model_name, prompts):
    full = client.completions.create(model=model_name, prompt=prompts[0], max_tokens=16,
                                     temperature=0)
    text = full.choices[0].text
    stop = next(ch for ch in text[1:] if ch.strip())
    cut = client.completions.create(model=model_name, prompt=prompts[0], max_tokens=16,
                                    temperature=0, stop=[stop, "never-there"])
    assert cut.choices[0].text == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    assert cut.usage.completion_tokens < full.usage.completion_tokens or text.index(stop) > 0


def test_chat_logprobs_shape_and_greedy_consistency(client, model_name, texts):
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


def test_completion_top_logprobs_legacy_shape(client, model_name, prompts):
    response = client.completions.create(model=model_name, prompt=prompts[1], max_tokens=5,
                                         temperature=0.7, seed=3, logprobs=3)
    logprobs = response.choices[0].logprobs
    assert len(logprobs.tokens) == len(logprobs.token_logprobs) == len(logprobs.top_logprobs)
    assert all(1 <= len(top) <= 3 for top in logprobs.top_logprobs)
    assert all(lp <= 0 for lp in logprobs.token_logprobs)
    assert "".join(logprobs.tokens).startswith(response.choices[0].text) or \
        response.choices[0].finish_reason == "stop"
