"""Distillation losses beyond plain cross-entropy, as a per-token mean over the batch.

Every loss here is summed over the labelled target tokens and divided by the number of such
tokens in the whole optimizer step (the Trainer's ``num_items_in_batch``, which counts across
gradient-accumulation batches), so that ``grad_accum: 2`` with batch 4 is the same objective as
batch 8, and an unweighted, KD-free loss is exactly the model's own causal-LM loss. (A mean per
example first would give a 10-token answer the pull of a 150-token rationale and change with
``grad_accum``.)

- Token-level KD (Fu et al. 2023; seed 002): at every target token, a KL term pulls the
  student's next-token distribution towards the teacher's (temperature-softened), weighted
  against cross-entropy by ``kd_weight``. The teacher's distribution is over the student's
  vocabulary: dense logits of a local teacher sharing the student's tokenizer
  (:func:`token_kl`; another tokenizer is refused before training), or the top-k
  log-probabilities an API teacher returned, projected onto the student's vocabulary by
  :mod:`cotdistill.student.kd` whatever the teacher's tokenizer, with the rest of its mass as
  one "other token" outcome (:func:`sparse_token_kl`; positions without a stored
  distribution, such as the answer after ``-->``, get cross-entropy only).
- Task and example weights (distilling step-by-step, Hsieh et al. 2023; down-weighted hinted
  rationales): each example's tokens count ``weight`` times, so ``rationale_weight`` trades
  answer accuracy against rationale imitation and a weight of 0 removes an example.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cotdistill.student.data import IGNORE, MISSING


def target_mask(labels: torch.Tensor) -> torch.Tensor:
    """[batch, length - 1]: the positions whose next token is a labelled target."""
    return labels[:, 1:] != IGNORE


def token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[batch, length - 1] cross-entropy of each next token (causal shift applied); 0 where the
    label is ignored."""
    shifted_logits, shifted_labels = logits[:, :-1, :], labels[:, 1:]
    return F.cross_entropy(shifted_logits.float().transpose(1, 2), shifted_labels,
                           ignore_index=IGNORE, reduction="none")


def token_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
             temperature: float) -> torch.Tensor:
    """[batch, length - 1] KL(teacher || student) per next token, times T^2; 0 where the label
    is ignored."""
    student = F.log_softmax(student_logits[:, :-1, :].float() / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits[:, :-1, :].float() / temperature, dim=-1)
    kl = (teacher.exp() * (teacher - student)).sum(dim=-1)
    return kl * target_mask(labels) * temperature**2


def sparse_token_kl(student_logits: torch.Tensor, kd_ids: torch.Tensor,
                    kd_logprobs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[batch, length - 1] KL(teacher || student) per next token with a stored teacher top-k,
    and where there is one.

    ``kd_ids`` / ``kd_logprobs`` are [batch, length, k], aligned with the labels (position t
    holds the teacher's distribution over token t); slots at :data:`MISSING` are empty. Both
    distributions are coarsened to the same k + 1 outcomes: each of the teacher's k tokens, and
    "any other token", which holds the teacher's mass not listed (1 - sum of the k) and the
    student's mass on every other token. That is the exact KL between the coarsened
    distributions: >= 0, at most the full KL, and 0 when the student's distribution is the
    teacher's. (Renormalising the k instead would charge a student identical to the teacher
    for its tail.) No temperature: softening the teacher needs all its logits, and stored
    log-probabilities are at temperature 1.
    """
    ids, logprobs = kd_ids[:, 1:, :], kd_logprobs[:, 1:, :].float()  # bf16 under DeepSpeed
    valid = logprobs > MISSING / 2
    position = valid.any(dim=-1)
    teacher = torch.where(valid, logprobs, torch.zeros_like(logprobs))
    student = F.log_softmax(student_logits[:, :-1, :].float(), dim=-1).gather(-1, ids)
    listed = torch.where(valid, teacher.exp() * (teacher - student), torch.zeros_like(student))
    teacher_rest = (1 - torch.where(valid, teacher.exp(), 0.0).sum(dim=-1)).clamp(min=0)
    student_rest = (1 - torch.where(valid, student.exp(), 0.0).sum(dim=-1)).clamp(min=1e-8)
    rest = torch.where(teacher_rest > 0,
                       teacher_rest * (teacher_rest.clamp(min=1e-30).log() - student_rest.log()),
                       torch.zeros_like(teacher_rest))
    kl = listed.sum(dim=-1) + rest
    return torch.where(position, kl, torch.zeros_like(kl)), position


def distillation_loss(
    student_logits: torch.Tensor, labels: torch.Tensor, *, weights: torch.Tensor | None = None,
    teacher_logits: torch.Tensor | None = None, kd_weight: float = 0.0, temperature: float = 1.0,
    kd_ids: torch.Tensor | None = None, kd_logprobs: torch.Tensor | None = None,
    num_items: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """Sum over target tokens of (1 - kd_weight) x CE + kd_weight x KL, each token scaled by
    its example's weight, divided by ``num_items`` (the target tokens of the whole optimizer
    step; default: of this batch).

    The teacher is either dense ``teacher_logits`` or sparse ``kd_ids``/``kd_logprobs``; a
    token without a stored teacher distribution keeps its plain cross-entropy.
    """
    mask = target_mask(labels)
    per_token = token_cross_entropy(student_logits, labels)
    if teacher_logits is not None and kd_weight > 0:
        kl = token_kl(student_logits, teacher_logits, labels, temperature)
        per_token = (1 - kd_weight) * per_token + kd_weight * kl
    elif kd_ids is not None and kd_logprobs is not None and kd_weight > 0:
        kl, has_teacher = sparse_token_kl(student_logits, kd_ids, kd_logprobs)
        per_token = torch.where(has_teacher, (1 - kd_weight) * per_token + kd_weight * kl,
                                per_token)
    if weights is not None:
        per_token = per_token * weights.to(per_token.dtype)[:, None]
    total = (per_token * mask).sum()
    count = mask.sum().clamp(min=1) if num_items is None else num_items
    return total / count
