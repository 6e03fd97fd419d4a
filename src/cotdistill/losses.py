"""Distillation losses beyond plain cross-entropy.

- Token-level KD (Fu et al. 2023; seed 002): at every target token, a KL term pulls the
  student's next-token distribution towards the teacher's (temperature-softened), weighted
  against cross-entropy by ``kd_weight``. Needs teacher logits over the *same* vocabulary:
  a local teacher sharing the student's tokenizer (mismatches are refused before training).
- Multi-task rationale loss (distilling step-by-step, Hsieh et al. 2023): answer and
  rationale are two tasks over separate examples; each example's loss is scaled by its task's
  weight, so ``rationale_weight`` trades answer accuracy against rationale imitation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cotdistill.training_data import IGNORE


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


def distillation_loss(
    student_logits: torch.Tensor, labels: torch.Tensor, *, weights: torch.Tensor | None = None,
    teacher_logits: torch.Tensor | None = None, kd_weight: float = 0.0, temperature: float = 1.0,
) -> torch.Tensor:
    """(1 - kd_weight) x CE + kd_weight x KL per example, scaled by example weights, averaged."""
    per_example = token_cross_entropy(student_logits, labels)
    if teacher_logits is not None and kd_weight > 0:
        kl = token_kl(student_logits, teacher_logits, labels, temperature)
        per_example = (1 - kd_weight) * per_example + kd_weight * kl
    if weights is not None:
        return (per_example * weights).sum() / weights.sum().clamp(min=1e-8)
    return per_example.mean()
