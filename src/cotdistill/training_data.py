"""Tokenising curated examples for causal-LM training, with the prompt masked out of the loss.

Only the target (and the EOS that ends it) carries loss: the student learns to write the
rationale and answer, not to reproduce the question.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE = -100


def encode(tokenizer, prompt: str, target: str, max_length: int) -> dict[str, list[int]]:
    """Token ids and labels for one example; labels are IGNORE over the prompt."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    input_ids = (prompt_ids + target_ids)[:max_length]
    labels = ([IGNORE] * len(prompt_ids) + target_ids)[:max_length]
    return {"input_ids": input_ids, "labels": labels}


@dataclass
class PadCollator:
    """Right-pads a batch; padded positions get no attention and no loss."""

    pad_token_id: int

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        ids, labels, mask = [], [], []
        for feature in features:
            pad = width - len(feature["input_ids"])
            ids.append(feature["input_ids"] + [self.pad_token_id] * pad)
            labels.append(feature["labels"] + [IGNORE] * pad)
            mask.append([1] * len(feature["input_ids"]) + [0] * pad)
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(mask),
        }
