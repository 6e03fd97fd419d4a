"""Generation, as evaluation, validation, baselines, predict and the in-process teacher use it:
outputs in prompt order whatever the batching, cut at the stops, and no side effect on the
caller's random state."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from cotdistill.lm.generation import generate

PROMPTS = ["A coin is heads up. ###", "Take the last letters of each words in \"Ann Bob\". ###",
           "Q: 1 + 1?", "A coin is heads up. Ann flips the coin. Is it heads up? ###"]


def _model(tiny_model):
    return AutoModelForCausalLM.from_pretrained(tiny_model), AutoTokenizer.from_pretrained(tiny_model)


def test_greedy_outputs_come_back_in_prompt_order_whatever_the_batch_size(tiny_model):
    model, tokenizer = _model(tiny_model)
    one = generate(model, tokenizer, PROMPTS, max_new_tokens=6, batch_size=1)
    four = generate(model, tokenizer, PROMPTS, max_new_tokens=6, batch_size=4)
    alone = [generate(model, tokenizer, [p], max_new_tokens=6, batch_size=1)[0] for p in PROMPTS]
    assert [g.text for g in one] == [g.text for g in four] == [g.text for g in alone]
    assert all(0 < g.completion_tokens <= 6 for g in one)


def test_a_stop_ends_the_text_at_its_first_appearance_in_the_completion(tiny_model):
    """The text is the completion up to the stop, never the stop itself, and stops are looked
    for in the completion only: a stop that the prompt ends with does not end generation."""
    model, tokenizer = _model(tiny_model)
    for prompt in PROMPTS:
        free = generate(model, tokenizer, [prompt], max_new_tokens=8, batch_size=1)[0]
        assert len(free.text) > 2
        stop = free.text[1]  # a piece of what the model writes anyway
        cut = generate(model, tokenizer, [prompt], max_new_tokens=8, batch_size=1,
                       stop=[stop])[0]
        assert cut.text == free.text[:free.text.index(stop)]
        assert cut.completion_tokens < free.completion_tokens
        tail = prompt[-2:]  # the prompt's own end, as a stop
        own = generate(model, tokenizer, [prompt], max_new_tokens=8, batch_size=1,
                       stop=[tail])[0]
        assert own.text == free.text[:free.text.find(tail)] if tail in free.text \
            else own.text == free.text


def test_a_sampled_output_depends_on_the_seed_and_the_prompt_only(tiny_model):
    """Not on the batch size, the order, the other prompts, or what ran before it."""
    model, tokenizer = _model(tiny_model)

    def sample(prompts, seed=3, batch_size=4):
        return [g.text for g in generate(model, tokenizer, prompts, max_new_tokens=8,
                                         batch_size=batch_size, temperature=1.0, seed=seed)]

    together = sample(PROMPTS)
    assert sample(PROMPTS, batch_size=1) == together
    assert sample(PROMPTS[::-1], batch_size=3) == together[::-1]
    assert [sample([p])[0] for p in PROMPTS] == together
    assert sample(PROMPTS, seed=4) != together
    per_prompt = sample([PROMPTS[0]] * 3, seed=[1, 2, 3])  # diverse reasoning: one seed each
    assert len(set(per_prompt)) == 3 and per_prompt[2] == sample([PROMPTS[0]], seed=3)[0]


def test_generation_leaves_the_callers_random_state_as_it_was(tiny_model):
    """Validation scoring runs inside training: reseeding the global generator there would
    change the run's later data order and dropout, so the model would depend on select_every."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    generate(model, tokenizer, ["A coin is heads up. ###"], max_new_tokens=3, batch_size=1,
             temperature=0.7, seed=5)
    assert torch.equal(torch.rand(3), expected)
