"""Specification of tokenising curated examples: prompt masked, target + EOS trained, padding."""

from __future__ import annotations

import pytest
import torch

from cotdistill.student.data import IGNORE, PadCollator, encode

PROMPT = "A coin is heads up. Ann flips the coin. ###"
TARGET = " Ann flips it once. --> no"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    from cotdistill_testkit.tiny_model import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("tokenizer") / "model")
    return AutoTokenizer.from_pretrained(path)


def _ids(tokenizer, text: str, special: bool) -> list[int]:
    return tokenizer(text, add_special_tokens=special)["input_ids"]


def test_input_is_prompt_then_target_then_eos(tokenizer):
    encoded = encode(tokenizer, PROMPT, TARGET, max_length=512)
    expected = _ids(tokenizer, PROMPT, True) + _ids(tokenizer, TARGET, False)
    assert encoded["input_ids"] == expected + [tokenizer.eos_token_id]


def test_prompt_tokens_are_masked_from_the_loss(tokenizer):
    encoded = encode(tokenizer, PROMPT, TARGET, max_length=512)
    n_prompt = len(_ids(tokenizer, PROMPT, True))
    assert encoded["labels"][:n_prompt] == [IGNORE] * n_prompt
    assert IGNORE == -100


def test_target_tokens_and_eos_are_the_labels(tokenizer):
    encoded = encode(tokenizer, PROMPT, TARGET, max_length=512)
    n_prompt = len(_ids(tokenizer, PROMPT, True))
    assert encoded["labels"][n_prompt:] == encoded["input_ids"][n_prompt:]
    assert encoded["labels"][-1] == tokenizer.eos_token_id
    assert IGNORE not in encoded["labels"][n_prompt:]


def test_labels_and_inputs_have_the_same_length(tokenizer):
    encoded = encode(tokenizer, PROMPT, TARGET, max_length=512)
    assert len(encoded["labels"]) == len(encoded["input_ids"])


def test_long_examples_are_truncated_to_max_length(tokenizer):
    full = encode(tokenizer, PROMPT, TARGET, max_length=512)
    n_prompt = len(_ids(tokenizer, PROMPT, True))
    cut = n_prompt + 2
    encoded = encode(tokenizer, PROMPT, TARGET, max_length=cut)
    assert encoded["input_ids"] == full["input_ids"][:cut]
    assert encoded["labels"] == full["labels"][:cut]
    assert encoded["labels"][-2:] == _ids(tokenizer, TARGET, False)[:2]
    assert tokenizer.eos_token_id not in encoded["input_ids"]


def test_truncation_inside_the_prompt_leaves_no_label(tokenizer):
    encoded = encode(tokenizer, PROMPT, TARGET, max_length=3)
    assert len(encoded["input_ids"]) == 3
    assert encoded["labels"] == [IGNORE] * 3


def test_an_example_that_fits_is_not_truncated(tokenizer):
    full = encode(tokenizer, PROMPT, TARGET, max_length=512)
    exact = encode(tokenizer, PROMPT, TARGET, max_length=len(full["input_ids"]))
    assert exact == full


# --- padding ---------------------------------------------------------------------------------

SHORT = {"input_ids": [5, 6], "labels": [IGNORE, 6]}
LONG = {"input_ids": [7, 8, 9, 10], "labels": [IGNORE, IGNORE, 9, 10]}


def test_collator_right_pads_ids_with_the_pad_token():
    batch = PadCollator(pad_token_id=0)([SHORT, LONG])
    assert batch["input_ids"].tolist() == [[5, 6, 0, 0], [7, 8, 9, 10]]


def test_collator_pads_labels_with_ignore():
    batch = PadCollator(pad_token_id=0)([SHORT, LONG])
    assert batch["labels"].tolist() == [[IGNORE, 6, IGNORE, IGNORE], [IGNORE, IGNORE, 9, 10]]


def test_collator_attention_mask_is_zero_on_padding():
    batch = PadCollator(pad_token_id=0)([SHORT, LONG])
    assert batch["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]


def test_collator_returns_integer_tensors_of_one_shape():
    batch = PadCollator(pad_token_id=3)([LONG, SHORT, LONG])
    assert set(batch) == {"input_ids", "labels", "attention_mask"}
    for tensor in batch.values():
        assert tensor.dtype == torch.long
        assert tuple(tensor.shape) == (3, 4)


def test_collator_leaves_an_equal_length_batch_unpadded():
    batch = PadCollator(pad_token_id=0)([LONG, LONG])
    assert batch["attention_mask"].tolist() == [[1] * 4, [1] * 4]


def test_encoded_examples_collate_with_the_tokenizers_pad_token(tokenizer):
    features = [
        encode(tokenizer, PROMPT, TARGET, max_length=512),
        encode(tokenizer, "Q ###", " yes", max_length=512),
    ]
    batch = PadCollator(pad_token_id=tokenizer.pad_token_id)(features)
    short = len(features[1]["input_ids"])
    assert batch["input_ids"][1, short:].eq(tokenizer.pad_token_id).all()
    assert batch["labels"][1, short:].eq(IGNORE).all()
    assert batch["attention_mask"][1].sum().item() == short


def test_mask_results_leaves_only_the_calculators_results_out_of_the_loss(tokenizer):
    """fine_tune_cot_calc with mask_results: the student is not taught the numbers the
    calculator will write for it; everything else of the target still carries loss."""
    target = " He has 12 + 30 = 42 apples, 7 / 0 = 3 pears. --> 42"
    plain = encode(tokenizer, PROMPT, target, max_length=512)
    masked = encode(tokenizer, PROMPT, target, max_length=512, mask_results=True)
    assert masked["input_ids"] == plain["input_ids"]
    dropped = [i for i, (a, b) in enumerate(zip(plain["labels"], masked["labels"])) if a != b]
    assert dropped and all(masked["labels"][i] == IGNORE for i in dropped)
    assert tokenizer.decode([plain["input_ids"][i] for i in dropped]).strip() == "42"
    assert masked["labels"][-1] == tokenizer.eos_token_id  # the answer after --> is trained
