"""The engine of cotdistill.serve, through the server: determinism and dynamic batching.

A row's output depends on its seed, choice and prompt only: not on n, on the other prompts of
its request, nor on which requests share its generate call.
"""

from __future__ import annotations

import asyncio

import openai


def test_same_seed_same_output_other_seed_other_output(client, model_name, prompts, texts):
    def ask(seed, prompt=prompts[0], n=4):
        return texts(client.completions.create(model=model_name, prompt=prompt, n=n,
                                               max_tokens=10, temperature=1.0, seed=seed))

    first = ask(7)
    assert ask(7) == first
    assert ask(8) != first
    assert ask(7, n=2) == first[:2], "choice j does not depend on n"
    both = ask(7, prompt=[prompts[0], prompts[1]], n=2)
    assert both[:2] == first[:2], "choice j of a prompt does not depend on the other prompts"
    assert both[2:] != both[:2], "different prompts do not share random numbers"


def test_greedy_matches_in_process_generation(client, model_name, tiny_model, prompts, texts):
    from cotdistill.lm.generation import generate
    from cotdistill.lm.store import load_causal_lm

    model, tok = load_causal_lm(str(tiny_model), "test", for_generation=True)
    local = generate(model, tok, prompts, max_new_tokens=12, batch_size=2)
    served = client.completions.create(model=model_name, prompt=prompts, max_tokens=12,
                                       temperature=0)
    assert texts(served) == [g.text for g in local]
    assert served.usage.completion_tokens == sum(g.completion_tokens for g in local)


def test_a_sample_is_the_same_served_or_in_process(client, model_name, tiny_model, prompts,
                                                   texts):
    """Both callers of the one decoding loop: choice 0 of a request with seed s is what
    in-process generation samples for that prompt with seed s, in any batch."""
    from cotdistill.lm.generation import generate
    from cotdistill.lm.store import load_causal_lm

    model, tok = load_causal_lm(str(tiny_model), "test", for_generation=True)
    local = generate(model, tok, prompts, max_new_tokens=12, batch_size=3, temperature=1.0,
                     seed=11)
    served = [texts(client.completions.create(model=model_name, prompt=p, max_tokens=12,
                                              temperature=1.0, seed=11))[0] for p in prompts]
    assert served == [g.text for g in local]


def test_concurrent_requests_share_generate_calls(server, client, model_name, stats, texts):
    messages = [[{"role": "user", "content": f"Question {i}: heads or tails?"}] for i in range(8)]
    alone = [texts(client.chat.completions.create(model=model_name, messages=m, max_tokens=8,
                                                  temperature=0.8, seed=i))
             for i, m in enumerate(messages)]
    before = stats()

    async def together():
        async with openai.AsyncOpenAI(base_url=server, api_key="x", max_retries=0) as aclient:
            return await asyncio.gather(*(
                aclient.chat.completions.create(model=model_name, messages=m, max_tokens=8,
                                                temperature=0.8, seed=i)
                for i, m in enumerate(messages)))

    responses = asyncio.run(together())
    after = stats()
    assert [texts(r) for r in responses] == alone, "batch company must not change outputs"
    assert after["completions"]["/v1/chat/completions"] - \
        before["completions"]["/v1/chat/completions"] == 8
    assert after["generate_calls"] - before["generate_calls"] <= 3
    assert after["requests"] - before["requests"] == 8
