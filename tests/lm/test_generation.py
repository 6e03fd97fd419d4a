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


def test_a_stop_ends_the_text_before_it(tiny_model):
    """The text is the completion up to the stop, never the stop itself. (Where it stops may
    come earlier than the first appearance in the completion: Hugging Face matches stop
    strings on the whole sequence, the prompt's end included.)"""
    model, tokenizer = _model(tiny_model)
    for prompt in PROMPTS:
        free = generate(model, tokenizer, [prompt], max_new_tokens=8, batch_size=1)[0]
        assert len(free.text) > 2
        stop = free.text[1]  # a piece of what the model writes anyway
        cut = generate(model, tokenizer, [prompt], max_new_tokens=8, batch_size=1,
                       stop=[stop])[0]
        assert free.text.startswith(cut.text) and stop not in cut.text
        assert len(cut.text) < len(free.text) and cut.completion_tokens < free.completion_tokens


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
