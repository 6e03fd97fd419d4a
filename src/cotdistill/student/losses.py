"""Distillation losses beyond plain cross-entropy.

- Token-level KD (Fu et al. 2023; seed 002): at every target token, a KL term pulls the
  student's next-token distribution towards the teacher's (temperature-softened), weighted
  against cross-entropy by ``kd_weight``. Needs the teacher's distribution over the *same*
  vocabulary (mismatches are refused before training): dense logits of a local teacher
  sharing the student's tokenizer (:func:`token_kl`), or the top-k log-probabilities an API
  teacher returned, with the rest of its mass as one "other token" outcome
  (:func:`sparse_token_kl`; positions without a stored distribution, such as the answer after
  ``-->``, get cross-entropy only).
- Multi-task rationale loss (distilling step-by-step, Hsieh et al. 2023): answer and
  rationale are two tasks over separate examples; each example's loss is scaled by its task's
  weight, so ``rationale_weight`` trades answer accuracy against rationale imitation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cotdistill.student.data import IGNORE, MISSING


def token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-example mean cross-entropy over labelled positions (causal shift applied)."""
    shifted_logits, shifted_labels = logits[:, :-1, :], labels[:, 1:]
    losses = F.cross_entropy(shifted_logits.transpose(1, 2), shifted_labels,
                             ignore_index=IGNORE, reduction="none")
    counts = (shifted_labels != IGNORE).sum(dim=1).clamp(min=1)
    return losses.sum(dim=1) / counts


def token_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
             temperature: float) -> torch.Tensor:
    """Per-example mean KL(teacher || student) over labelled positions, times T^2."""
    mask = (labels[:, 1:] != IGNORE).float()
    student = F.log_softmax(student_logits[:, :-1, :] / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits[:, :-1, :] / temperature, dim=-1)
    kl = (teacher.exp() * (teacher - student)).sum(dim=-1)
    return (kl * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1) * temperature**2


def sparse_token_kl(student_logits: torch.Tensor, kd_ids: torch.Tensor,
                    kd_logprobs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example mean KL(teacher || student) over positions with a stored teacher top-k.

    ``kd_ids`` / ``kd_logprobs`` are [batch, length, k], aligned with the labels (position t
    holds the teacher's distribution over token t); slots at :data:`MISSING` are empty. Both
    distributions are coarsened to the same k + 1 outcomes: each of the teacher's k tokens, and
    "any other token", which holds the teacher's mass not listed (1 - sum of the k) and the
    student's mass on every other token. That is the exact KL between the coarsened
    distributions: >= 0, at most the full KL, and 0 when the student's distribution is the
    teacher's. (Renormalising the k instead would charge a student identical to the teacher
    for its tail.) No temperature: softening the teacher needs all its logits, and stored
    log-probabilities are at temperature 1. Returns the KL and, per example, whether it had
    any such position.
    """
    ids, logprobs = kd_ids[:, 1:, :], kd_logprobs[:, 1:, :].float()  # bf16 under DeepSpeed
    valid = logprobs > MISSING / 2
    position = valid.any(dim=-1).float()
    teacher = torch.where(valid, logprobs, torch.zeros_like(logprobs))
    student = F.log_softmax(student_logits[:, :-1, :].float(), dim=-1).gather(-1, ids)
    listed = torch.where(valid, teacher.exp() * (teacher - student), torch.zeros_like(student))
    teacher_rest = (1 - torch.where(valid, teacher.exp(), 0.0).sum(dim=-1)).clamp(min=0)
    student_rest = (1 - torch.where(valid, student.exp(), 0.0).sum(dim=-1)).clamp(min=1e-8)
    rest = torch.where(teacher_rest > 0,
                       teacher_rest * (teacher_rest.clamp(min=1e-30).log() - student_rest.log()),
                       torch.zeros_like(teacher_rest))
    kl = listed.sum(dim=-1) + rest
    counts = position.sum(dim=1)
    per_example = (kl * position).sum(dim=1) / counts.clamp(min=1)
    return per_example, counts > 0


def distillation_loss(
    student_logits: torch.Tensor, labels: torch.Tensor, *, weights: torch.Tensor | None = None,
    teacher_logits: torch.Tensor | None = None, kd_weight: float = 0.0, temperature: float = 1.0,
    kd_ids: torch.Tensor | None = None, kd_logprobs: torch.Tensor | None = None,
) -> torch.Tensor:
    """(1 - kd_weight) x CE + kd_weight x KL per example, scaled by example weights, averaged.

    The teacher is either dense ``teacher_logits`` or sparse ``kd_ids``/``kd_logprobs``; an
    example without any sparse teacher position keeps its plain cross-entropy.
    """
    per_example = token_cross_entropy(student_logits, labels)
    if teacher_logits is not None and kd_weight > 0:
        kl = token_kl(student_logits, teacher_logits, labels, temperature)
        per_example = (1 - kd_weight) * per_example + kd_weight * kl
    elif kd_ids is not None and kd_logprobs is not None and kd_weight > 0:
        kl, has_teacher = sparse_token_kl(student_logits, kd_ids, kd_logprobs)
        mixed = (1 - kd_weight) * per_example + kd_weight * kl
        per_example = torch.where(has_teacher, mixed, per_example)
    if weights is not None:
        return (per_example * weights).sum() / weights.sum().clamp(min=1e-8)
    return per_example.mean()
