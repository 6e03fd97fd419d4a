"""The training objective: a per-token mean over the optimizer step, as the Trainer's own.

Examples of different lengths must weigh by their tokens (a 10-token answer does not pull as
hard as a 150-token rationale), and ``grad_accum`` must not change the objective: batch 4 with
two accumulation steps is batch 8.
"""

from __future__ import annotations

import pytest
import torch

from cotdistill.student.data import IGNORE, PadCollator, encode
from cotdistill.student.losses import distillation_loss, token_cross_entropy, token_kl

# different lengths on purpose: a per-example mean and a per-token mean disagree on them
TEXTS = [("A coin is heads up. Ann flips it. Is it heads up? ###", " Ann flips it. --> no"),
         ("Take the last letters of Ada Bo. ###", " a, o. --> ao"),
         ("Q: Is it up? ###", " Yes, the coin was never flipped, so it stays heads up. --> yes"),
         ("A coin is tails up. Bo does not flip it. ###", " --> no")]


def _batch(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    features = [encode(tokenizer, prompt, target, 96) for prompt, target in TEXTS]
    assert len({len(f["input_ids"]) for f in features}) == len(TEXTS)
    return PadCollator(tokenizer.pad_token_id)(features)


def test_the_unweighted_loss_is_the_models_own_causal_lm_loss(tiny_model):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    batch = _batch(tiny_model)
    with torch.no_grad():
        own = model(**batch).loss  # transformers' ForCausalLMLoss: mean over target tokens
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    ours = distillation_loss(logits, batch["labels"])
    assert ours.item() == pytest.approx(own.item(), rel=1e-5)
    per_example = token_cross_entropy(logits, batch["labels"]).sum(1) / (
        batch["labels"][:, 1:] != IGNORE).sum(1)
    assert per_example.mean().item() != pytest.approx(own.item(), rel=1e-3)  # the old objective


def test_num_items_divides_the_sum_so_accumulated_batches_add_up_to_the_whole():
    torch.manual_seed(0)
    logits = torch.randn(4, 6, 9)
    labels = torch.tensor([[IGNORE, 1, 2, 3, 4, 5], [IGNORE, IGNORE, 7, IGNORE, IGNORE, IGNORE],
                           [IGNORE, 8, 8, 8, IGNORE, IGNORE], [IGNORE, IGNORE, IGNORE, 1, 2, 0]])
    total = int((labels[:, 1:] != IGNORE).sum())
    whole = distillation_loss(logits, labels)
    halves = (distillation_loss(logits[:2], labels[:2], num_items=total)
              + distillation_loss(logits[2:], labels[2:], num_items=total))
    assert halves.item() == pytest.approx(whole.item(), rel=1e-6)


def test_example_weights_scale_each_examples_tokens():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 6)
    labels = torch.tensor([[IGNORE, 1, 2, 3, 4], [IGNORE, IGNORE, IGNORE, 3, 1]])
    ce = token_cross_entropy(logits, labels)
    weighted = distillation_loss(logits, labels, weights=torch.tensor([1.0, 0.5]))
    assert weighted.item() == pytest.approx(((ce[0].sum() + 0.5 * ce[1].sum()) / 6).item())
    silent = distillation_loss(logits, labels, weights=torch.tensor([0.0, 1.0]))
    assert silent.item() == pytest.approx((ce[1].sum() / 6).item())


def test_kl_is_zero_when_the_student_equals_the_teacher_and_positive_otherwise():
    torch.manual_seed(0)
    logits = torch.randn(1, 4, 6)
    labels = torch.tensor([[IGNORE, 1, 2, 3]])
    assert torch.allclose(token_kl(logits, logits, labels, 2.0), torch.zeros(1, 3), atol=1e-6)
    assert token_kl(logits, torch.randn(1, 4, 6), labels, 2.0).sum().item() > 0


def test_kd_weight_mixes_cross_entropy_and_kl_token_by_token():
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 4, 6), torch.randn(2, 4, 6)
    labels = torch.tensor([[IGNORE, 1, 2, 3], [IGNORE, IGNORE, 5, IGNORE]])
    ce, kl = token_cross_entropy(student, labels), token_kl(student, teacher, labels, 1.0)
    mixed = distillation_loss(student, labels, teacher_logits=teacher, kd_weight=0.25)
    assert mixed.item() == pytest.approx(((0.75 * ce + 0.25 * kl).sum() / 4).item(), rel=1e-6)


def test_gradients_flow_only_through_the_student():
    student = torch.randn(1, 4, 6, requires_grad=True)
    teacher = torch.randn(1, 4, 6)
    loss = distillation_loss(student, torch.tensor([[IGNORE, 1, 2, 3]]), teacher_logits=teacher,
                             kd_weight=0.5)
    loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0


def _one_sgd_step(tiny_model, tmp_path, batch_size: int, grad_accum: int, weighted: bool):
    """The weights after one optimizer step of the project's Trainer on eight examples of
    different lengths, with plain SGD at learning rate 1 and no clipping: new = old - gradient,
    so equal weights mean equal gradients (Adam would hide a scale error)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    from cotdistill.student.training import _distillation_trainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    features = [encode(tokenizer, prompt, target, 96) for prompt, target in TEXTS * 2]
    if weighted:  # distill step-by-step's task weights, say
        for index, feature in enumerate(features):
            feature["weight"] = 1.0 if index % 2 else 0.5
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    arguments = TrainingArguments(
        output_dir=str(tmp_path / f"run-{batch_size}-{grad_accum}-{weighted}"),
        per_device_train_batch_size=batch_size, gradient_accumulation_steps=grad_accum,
        optim="sgd", learning_rate=1.0, lr_scheduler_type="constant", max_grad_norm=0.0,
        max_steps=1, save_strategy="no", report_to="none", use_cpu=True, seed=0,
        remove_unused_columns=False, disable_tqdm=True)
    trainer_class = _distillation_trainer() if weighted else Trainer
    trainer = trainer_class(model=model, args=arguments, train_dataset=features,
                            data_collator=PadCollator(tokenizer.pad_token_id))
    trainer.train()
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "task-weighted"])
def test_grad_accum_2_gives_the_gradient_of_the_doubled_batch(tiny_model, tmp_path, weighted):
    from transformers import AutoModelForCausalLM

    before = AutoModelForCausalLM.from_pretrained(tiny_model).state_dict()
    whole = _one_sgd_step(tiny_model, tmp_path, 8, 1, weighted)
    accumulated = _one_sgd_step(tiny_model, tmp_path, 4, 2, weighted)
    moved = [name for name in whole if not torch.equal(whole[name], before[name])]
    assert moved  # the step did something
    for name in moved:
        assert torch.allclose(whole[name], accumulated[name], atol=1e-5, rtol=1e-4), name
