"""Tokenising curated examples for causal-LM training, with the prompt masked out of the loss.

Only the target (and the EOS that ends it) carries loss: the student learns to write the
rationale and answer, not to reproduce the question.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cotdistill.prompts import student_text

IGNORE = -100
MISSING = -1e4  # log-probability marking an empty slot of a sparse teacher distribution


def encode(tokenizer, prompt: str, target: str, max_length: int, *,
           encoder_decoder: bool = False, mask_results: bool = False) -> dict[str, list[int]]:
    """Token ids and labels for one example; labels are IGNORE over the prompt.

    Encoder-decoder students get the prompt as encoder input and the target (+ EOS) as labels.
    ``mask_results``: labels are IGNORE too over the results that a calculator-decoding student
    gets written for it (:func:`cotdistill.calculator.computations`).
    """
    if encoder_decoder:
        source, target_text = student_text(prompt, target, encoder_decoder=True)
        labels = _target_labels(tokenizer, target_text, mask_results)
        return {"input_ids": tokenizer(source)["input_ids"][:max_length],
                "labels": (labels + [tokenizer.eos_token_id])[:max_length]}
    prompt_ids = tokenizer(prompt)["input_ids"]
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    input_ids = (prompt_ids + target_ids)[:max_length]
    target_labels = _target_labels(tokenizer, target, mask_results) + [tokenizer.eos_token_id]
    labels = ([IGNORE] * len(prompt_ids) + target_labels)[:max_length]
    return {"input_ids": input_ids, "labels": labels}


def _target_labels(tokenizer, target: str, mask_results: bool) -> list[int]:
    """The target's ids as labels; with ``mask_results``, IGNORE on every token that overlaps
    a result the calculator writes (a token holding "= 1" of "= 15" is masked whole)."""
    if not mask_results:
        return tokenizer(target, add_special_tokens=False)["input_ids"]
    from cotdistill.calculator import computations

    encoded = tokenizer(target, add_special_tokens=False, return_offsets_mapping=True)
    spans = [(c.start, c.end) for c in computations(target)]
    return [IGNORE if any(start < end_span and end > start_span
                          for start_span, end_span in spans) else token
            for token, (start, end) in zip(encoded["input_ids"], encoded["offset_mapping"])]


@dataclass
class PadCollator:
    """Right-pads a batch; padded positions get no attention and no loss."""

    pad_token_id: int

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        label_width = max(len(f["labels"]) for f in features)  # differs for encoder-decoders
        ids, labels, mask = [], [], []
        for feature in features:
            pad = width - len(feature["input_ids"])
            ids.append(feature["input_ids"] + [self.pad_token_id] * pad)
            labels.append(feature["labels"] + [IGNORE] * (label_width - len(feature["labels"])))
            mask.append([1] * len(feature["input_ids"]) + [0] * pad)
        batch = {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(mask),
        }
        if "weight" in features[0]:  # multi-task examples carry their task's loss weight
            batch["weight"] = torch.tensor([float(f["weight"]) for f in features])
        if "kd" in features[0]:  # sparse teacher distributions: [(position, ids, logprobs)]
            batch["kd_ids"], batch["kd_logprobs"] = _sparse_teacher(features, label_width)
        return batch


def _sparse_teacher(features: list[dict], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense [batch, width, k] ids and log-probabilities; empty slots hold MISSING."""
    k = max((len(ids) for f in features for _, ids, _ in f["kd"]), default=1)
    ids = torch.zeros((len(features), width, k), dtype=torch.long)
    logprobs = torch.full((len(features), width, k), MISSING)
    for row, feature in enumerate(features):
        for position, token_ids, values in feature["kd"]:
            if position < width:
                ids[row, position, :len(token_ids)] = torch.tensor(token_ids)
                logprobs[row, position, :len(values)] = torch.tensor(values)
    return ids, logprobs
