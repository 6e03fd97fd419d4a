"""Distillation losses: cross-entropy, token-level KD and task weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cotdistill.student.losses import distillation_loss, token_cross_entropy, token_kl

IGNORE = -100


def test_cross_entropy_matches_the_models_own_loss_when_unweighted():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[IGNORE, IGNORE, 3, 4, 1], [IGNORE, 2, 2, IGNORE, IGNORE]])
    per_example = token_cross_entropy(logits, labels)
    first = F.cross_entropy(logits[0, 1:4], labels[0, 2:5])
    assert torch.allclose(per_example[0], first)
    assert torch.allclose(distillation_loss(logits, labels), per_example.mean())


def test_kl_is_zero_when_the_student_equals_the_teacher_and_positive_otherwise():
    torch.manual_seed(0)
    logits = torch.randn(1, 4, 6)
    labels = torch.tensor([[IGNORE, 1, 2, 3]])
    assert torch.allclose(token_kl(logits, logits, labels, 2.0), torch.zeros(1), atol=1e-6)
    assert token_kl(logits, torch.randn(1, 4, 6), labels, 2.0).item() > 0


def test_kd_weight_mixes_cross_entropy_and_kl():
    torch.manual_seed(0)
    student, teacher = torch.randn(1, 4, 6), torch.randn(1, 4, 6)
    labels = torch.tensor([[IGNORE, 1, 2, 3]])
    ce = token_cross_entropy(student, labels)
    kl = token_kl(student, teacher, labels, 1.0)
    mixed = distillation_loss(student, labels, teacher_logits=teacher, kd_weight=0.25)
    assert torch.allclose(mixed, (0.75 * ce + 0.25 * kl).mean())


def test_task_weights_scale_each_examples_share():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 6)
    labels = torch.tensor([[IGNORE, 1, 2, 3], [IGNORE, 3, 2, 1]])
    per_example = token_cross_entropy(logits, labels)
    weighted = distillation_loss(logits, labels, weights=torch.tensor([1.0, 0.0]))
    assert torch.allclose(weighted, per_example[0])


def test_gradients_flow_only_through_the_student():
    student = torch.randn(1, 4, 6, requires_grad=True)
    teacher = torch.randn(1, 4, 6)
    loss = distillation_loss(student, torch.tensor([[IGNORE, 1, 2, 3]]), teacher_logits=teacher,
                             kd_weight=0.5)
    loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
