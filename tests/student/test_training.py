"""Student training: prompt-masked causal-LM fine-tuning, plain and through DeepSpeed on CPU."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from cotdistill.errors import CotdistillError
from cotdistill.params import HParams, MethodParams
from cotdistill.records import CuratedExample
from cotdistill.student.training import train_student

EXAMPLES = [
    CuratedExample(id=f"coin-{i}", dataset="coin_flip", method="fine_tune_cot", source=None,
                   input=f"A coin is heads up. Ann flips the coin {i} times. Is it heads up? ###",
                   target=" Ann flips it, so it is tails. --> no")
    for i in range(8)
]


def _weights(directory) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "model.safetensors"))


def test_plain_training_lowers_the_loss_and_changes_the_weights(tiny_model, tmp_path):
    hparams = HParams(max_steps=25, learning_rate=3e-3, batch_size=4, deepspeed="off")
    result = train_student(EXAMPLES, str(tiny_model), "students.tiny.model", hparams,
                           tmp_path / "out", use_deepspeed=False)
    assert result.steps == 25 and not result.deepspeed
    assert result.engine != "DeepSpeedEngine"
    assert result.final_loss < 0.5 * result.first_loss
    before, after = _weights(tiny_model), _weights(tmp_path / "out")
    assert any(not torch.equal(before[name], after[name]) for name in before)
    assert (tmp_path / "out" / "tokenizer.json").is_file()


def test_deepspeed_path_takes_real_optimizer_steps_on_cpu(tiny_model, tmp_path):
    hparams = HParams(max_steps=6, learning_rate=3e-3, batch_size=4, deepspeed="on")
    result = train_student(EXAMPLES, str(tiny_model), "students.tiny.model", hparams,
                           tmp_path / "out", use_deepspeed=True)
    assert result.engine == "DeepSpeedEngine"
    assert result.steps == 6
    assert [step for step, _ in result.losses] == [1, 2, 3, 4, 5, 6]
    assert result.final_loss < result.first_loss
    before, after = _weights(tiny_model), _weights(tmp_path / "out")
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert len(changed) == len(before)  # every tensor was updated by the optimizer


def test_deepspeed_can_train_twice_in_one_process(tiny_model, tmp_path):
    hparams = HParams(max_steps=2, learning_rate=1e-3, batch_size=4, deepspeed="on")
    for run in range(2):
        result = train_student(EXAMPLES, str(tiny_model), "k", hparams, tmp_path / f"run{run}",
                               use_deepspeed=True)
        assert result.engine == "DeepSpeedEngine" and result.steps == 2


def test_the_checkpoint_kept_is_the_best_on_validation_not_the_last(tiny_model, tmp_path):
    from cotdistill.records import PreparedExample
    from cotdistill.student.selection import ValidationSelection

    val = [PreparedExample(id=f"v-{i}", dataset="coin_flip", split="val", question=f"Q{i}?",
                           answer="no", answer_type="yes_no") for i in range(3)]
    scorings = []

    def read(output, example):  # only the second scoring (step 4) answers right
        scorings.append(example.id)
        return "no" if len(scorings) in range(4, 7) else None

    selection = ValidationSelection(examples=val, prompt=lambda q: f"{q} ###", read=read,
                                    every=2, max_new_tokens=4)
    hparams = HParams(max_steps=6, learning_rate=3e-3, batch_size=4, lr_scheduler="constant")
    result = train_student(EXAMPLES, str(tiny_model), "k", hparams, tmp_path / "selected",
                           use_deepspeed=False, selection=selection)
    assert result.steps == 6
    assert selection.history == [(2, 0.0), (4, 1.0), (6, 0.0)]
    assert selection.best_step == 4

    shorter = HParams(max_steps=4, learning_rate=3e-3, batch_size=4, lr_scheduler="constant")
    train_student(EXAMPLES, str(tiny_model), "k", shorter, tmp_path / "four", use_deepspeed=False)
    last = HParams(max_steps=6, learning_rate=3e-3, batch_size=4, lr_scheduler="constant")
    train_student(EXAMPLES, str(tiny_model), "k", last, tmp_path / "six", use_deepspeed=False)
    selected, four, six = (_weights(tmp_path / name) for name in ("selected", "four", "six"))
    assert all(torch.equal(selected[name], four[name]) for name in selected)
    assert not all(torch.equal(selected[name], six[name]) for name in selected)


def test_a_held_out_probe_is_scored_at_each_scoring_and_never_chooses_the_checkpoint(
        tiny_model, tmp_path):
    """train.hparams.transfer_probe: the held-out task's questions are scored at each
    validation scoring, after validation's, and kept apart from its accuracy."""
    from cotdistill.records import PreparedExample
    from cotdistill.student.selection import ValidationSelection

    val = [PreparedExample(id=f"v-{i}", dataset="coin_flip", split="val", question=f"Q{i}?",
                           answer="no", answer_type="yes_no") for i in range(2)]
    probe = [PreparedExample(id=f"h-{i}", dataset="strategy_qa", split="test",
                             question=f"H{i}?", answer="yes", answer_type="yes_no")
             for i in range(3)]
    read_ids = []

    def read(output, example):  # "no" to everything: validation right, the probe wrong
        read_ids.append(example.id)
        return "no"

    scored = []
    selection = ValidationSelection(examples=val, probe=probe, prompt=lambda q: f"{q} ###",
                                    read=read, every=2, max_new_tokens=4)
    hparams = HParams(max_steps=4, learning_rate=3e-3, batch_size=4, lr_scheduler="constant")
    train_student(EXAMPLES, str(tiny_model), "k", hparams, tmp_path / "probed",
                  use_deepspeed=False, selection=selection,
                  on_val=lambda step, accuracy, held_out: scored.append((step, held_out)))
    assert selection.history == [(2, 1.0), (4, 1.0)] and selection.best_step == 2
    assert selection.probe_history == [(2, 0.0), (4, 0.0)] == scored
    assert read_ids == ["v-0", "v-1", "h-0", "h-1", "h-2"] * 2


def test_early_stopping_ends_training_when_validation_stops_improving(tiny_model, tmp_path,
                                                                      caplog):
    """patience 2: after the best scoring (step 2) come two without a new best (4, 6), so
    training stops at step 6 of at most 40, and the kept weights are step 2's. Each scoring
    says so on the console as it happens."""
    from cotdistill.records import PreparedExample
    from cotdistill.student.selection import ValidationSelection

    val = [PreparedExample(id=f"v-{i}", dataset="coin_flip", split="val", question=f"Q{i}?",
                           answer="no", answer_type="yes_no") for i in range(3)]
    scorings = []

    def read(output, example):  # only the first scoring (step 2) answers right
        scorings.append(example.id)
        return "no" if len(scorings) <= 3 else None

    selection = ValidationSelection(examples=val, prompt=lambda q: f"{q} ###", read=read,
                                    every=2, max_new_tokens=4, patience=2)
    hparams = HParams(max_steps=40, learning_rate=3e-3, batch_size=4, lr_scheduler="constant",
                      select_every=2, patience=2)
    with caplog.at_level("INFO", logger="cotdistill.student.selection"):
        result = train_student(EXAMPLES, str(tiny_model), "k", hparams, tmp_path / "stopped",
                               use_deepspeed=False, selection=selection)
    assert result.stopped_early and selection.stopped_at == 6
    assert [r.getMessage() for r in caplog.records if r.name == "cotdistill.student.selection"] \
        == ["validation at step 2: 3/3 (100.0%), a new best",
            "validation at step 4: 0/3 (0.0%); best 3/3 at step 2; 1 scoring of patience left",
            "validation at step 6: 0/3 (0.0%); best 3/3 at step 2; patience spent"]
    assert result.steps == 6 and selection.history == [(2, 1.0), (4, 0.0), (6, 0.0)]
    assert 0 < result.epochs < 40 * 4 / len(EXAMPLES)
    two = HParams(max_steps=2, learning_rate=3e-3, batch_size=4, lr_scheduler="constant")
    train_student(EXAMPLES, str(tiny_model), "k", two, tmp_path / "two", use_deepspeed=False)
    stopped, at_two = _weights(tmp_path / "stopped"), _weights(tmp_path / "two")
    assert all(torch.equal(stopped[name], at_two[name]) for name in stopped)


def test_the_console_line_of_a_scoring_names_the_probe_and_omits_patience_when_unset():
    from cotdistill.records import PreparedExample
    from cotdistill.student.selection import ValidationSelection

    def questions(n, split):
        return [PreparedExample(id=f"{split}-{i}", dataset="coin_flip", split=split,
                                question="Q?", answer="no", answer_type="yes_no")
                for i in range(n)]

    selection = ValidationSelection(examples=questions(35, "val"), probe=questions(50, "test"),
                                    prompt=str, read=lambda output, example: None, every=20)
    selection.record(20, 5 / 35)
    selection.record(40, 4 / 35)
    assert selection.report(40, 4 / 35, 7 / 50) == \
        "validation at step 40: 4/35 (11.4%); best 5/35 at step 20; held-out probe 7/50"
    selection.patience = 3
    assert selection.report(40, 4 / 35) == \
        "validation at step 40: 4/35 (11.4%); best 5/35 at step 20; 2 scorings of patience left"


def test_without_patience_training_runs_to_the_end_however_validation_goes(tiny_model, tmp_path):
    from cotdistill.records import PreparedExample
    from cotdistill.student.selection import ValidationSelection

    val = [PreparedExample(id="v", dataset="coin_flip", split="val", question="Q?",
                           answer="no", answer_type="yes_no")]
    selection = ValidationSelection(examples=val, prompt=lambda q: f"{q} ###",
                                    read=lambda output, example: None, every=2, max_new_tokens=4)
    hparams = HParams(max_steps=8, learning_rate=3e-3, batch_size=4)
    result = train_student(EXAMPLES, str(tiny_model), "k", hparams, tmp_path / "out",
                           use_deepspeed=False, selection=selection)
    assert result.steps == 8 and not result.stopped_early


def test_patience_without_validation_scoring_is_refused():
    with pytest.raises(ValueError, match="patience needs select_every"):
        HParams(patience=3)


def test_bf16_training_runs_under_autocast_and_is_recorded(tiny_model, tmp_path):
    hparams = HParams(max_steps=4, learning_rate=3e-3, batch_size=4, precision="bf16")
    result = train_student(EXAMPLES, str(tiny_model), "k", hparams, tmp_path / "out",
                           use_deepspeed=False)
    assert result.precision == "bf16" and result.steps == 4
    assert result.final_loss < result.first_loss
    saved = _weights(tmp_path / "out")
    assert all(t.dtype == torch.float32 for t in saved.values())  # autocast: fp32 weights


def test_deepspeed_on_a_cpu_trains_in_fp32_and_refuses_bf16(tiny_model, tmp_path):
    auto = HParams(max_steps=1, learning_rate=1e-3, batch_size=4, precision="auto")
    result = train_student(EXAMPLES, str(tiny_model), "k", auto, tmp_path / "a",
                           use_deepspeed=True)
    assert result.precision == "fp32"
    with pytest.raises(CotdistillError, match="precision bf16 with DeepSpeed on a CPU"):
        train_student(EXAMPLES, str(tiny_model), "k", auto.model_copy(update={"precision": "bf16"}),
                      tmp_path / "b", use_deepspeed=True)


def test_plain_training_after_deepspeed_in_the_same_process_is_plain(tiny_model, tmp_path):
    hparams = HParams(max_steps=2, learning_rate=1e-3, batch_size=4)
    assert train_student(EXAMPLES, str(tiny_model), "k", hparams, tmp_path / "ds",
                         use_deepspeed=True).engine == "DeepSpeedEngine"
    plain = train_student(EXAMPLES, str(tiny_model), "k", hparams, tmp_path / "plain",
                          use_deepspeed=False)
    assert plain.engine != "DeepSpeedEngine" and plain.steps == 2


def test_deepspeed_configs_in_the_repository_are_valid_and_chosen_by_param():
    from support.repo import REPO

    from cotdistill.student.deepspeed_setup import config

    for name in ("zero2", "zero3", "zero3_offload", "cpu"):
        loaded = config(str(REPO / f"configs/deepspeed/{name}.json"))
        assert loaded["train_micro_batch_size_per_gpu"] == "auto"
    assert config(str(REPO / "configs/deepspeed/zero3_offload.json"))["zero_optimization"][
        "offload_optimizer"]["device"] == "cpu"
    assert config(None)["zero_optimization"]["stage"] == 0  # no CUDA here: cpu.json


def test_an_encoder_decoder_student_learns_the_bare_question_to_rationale_format(tmp_path):
    from cotdistill.lm.generation import generate
    from cotdistill.lm.store import load_causal_lm
    from cotdistill_testkit.tiny_model import build_tiny_model

    t5 = build_tiny_model(tmp_path / "t5", family="t5")
    hparams = HParams(max_steps=40, learning_rate=1e-2, batch_size=4)
    result = train_student(EXAMPLES, str(t5), "students.t5.model", hparams, tmp_path / "out",
                           use_deepspeed=False)
    assert result.final_loss < 0.5 * result.first_loss
    model, tokenizer = load_causal_lm(str(tmp_path / "out"), "k", for_generation=True)
    assert model.config.is_encoder_decoder
    output = generate(model, tokenizer, [EXAMPLES[0].input.removesuffix(" ###")],
                      max_new_tokens=24, batch_size=1)[0]
    # only the new text comes back (no echo of the question), and it is the learned rationale
    assert output.text.startswith("Ann flips it") and output.completion_tokens > 0


def test_lora_trains_only_adapters_and_saves_a_merged_plain_checkpoint(tiny_model, tmp_path):
    from cotdistill.params import LoraParams

    hparams = HParams(max_steps=15, learning_rate=2e-2, batch_size=4,
                      lora=LoraParams(r=4, alpha=8, dropout=0.0))
    result = train_student(EXAMPLES, str(tiny_model), "k", hparams, tmp_path / "out",
                           use_deepspeed=False)
    assert result.final_loss < result.first_loss
    before, after = _weights(tiny_model), _weights(tmp_path / "out")
    assert set(after) == set(before)  # merged: same tensors as the base model, no adapters
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all(name.endswith("proj.weight") for name in changed)
    assert not any("embed" in name or "norm" in name for name in changed)


def test_packing_flattens_batches_and_still_learns(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    from cotdistill.student.data import encode
    from cotdistill.student.training import _collator

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    features = [encode(tokenizer, e.input, e.target, 64) for e in EXAMPLES[:3]]
    batch = _collator(tokenizer, packing=True)(features)
    assert batch["input_ids"].shape[0] == 1  # one row, no padding
    assert batch["input_ids"].shape[1] == sum(len(f["input_ids"]) for f in features)
    starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist()
    assert starts == [0, len(features[0]["input_ids"]),
                      len(features[0]["input_ids"]) + len(features[1]["input_ids"])]
    hparams = HParams(max_steps=25, learning_rate=3e-3, batch_size=4, packing=True)
    result = train_student(EXAMPLES, str(tiny_model), "k", hparams, tmp_path / "out",
                           use_deepspeed=False)
    assert result.final_loss < 0.5 * result.first_loss


def test_token_level_kd_to_a_teacher_sharing_the_tokenizer(tiny_model, tmp_path):
    from cotdistill.params import KDParams
    from cotdistill_testkit.tiny_model import build_tiny_model

    teacher_dir = tmp_path / "teacher"
    train_student(EXAMPLES, str(tiny_model), "k", HParams(max_steps=20, learning_rate=3e-3,
                  batch_size=4), teacher_dir, use_deepspeed=False)
    hparams = HParams(max_steps=15, learning_rate=3e-3, batch_size=4,
                      kd=KDParams(teacher=str(teacher_dir), weight=0.5, temperature=2.0))
    result = train_student(EXAMPLES, str(tiny_model), "k", hparams, tmp_path / "student",
                           use_deepspeed=False)
    assert result.final_loss < result.first_loss

    other = build_tiny_model(tmp_path / "other", corpus=["completely different words"] * 5,
                             vocab_size=300)
    mismatched = HParams(max_steps=1, kd=KDParams(teacher=str(other)))
    with pytest.raises(CotdistillError, match="different tokenizer"):
        train_student(EXAMPLES, str(tiny_model), "k", mismatched, tmp_path / "x",
                      use_deepspeed=False)


def test_kd_mixes_the_kl_to_the_teacher_into_the_loss_by_its_weight(tiny_model, tmp_path):
    """Towards a teacher identical to the student the KL is 0, so with ``weight: 1`` the first
    loss is 0, and with ``weight: 0.5`` it is half the plain cross-entropy (one batch of all
    eight examples: the same tokens in each run)."""
    from cotdistill.params import KDParams

    def first_loss(kd: KDParams | None, out: str) -> float:
        hparams = HParams(max_steps=1, learning_rate=3e-3, batch_size=8, kd=kd)
        return train_student(EXAMPLES, str(tiny_model), "k", hparams, tmp_path / out,
                             use_deepspeed=False).first_loss

    plain = first_loss(None, "plain")
    assert plain > 0.5
    half = first_loss(KDParams(teacher=str(tiny_model), weight=0.5, temperature=2.0), "half")
    assert half == pytest.approx(plain / 2, rel=1e-4)
    alone = first_loss(KDParams(teacher=str(tiny_model), weight=1.0, temperature=2.0), "alone")
    assert alone == pytest.approx(0.0, abs=1e-6)


def test_rationale_weight_zero_leaves_the_rationale_task_unlearned(tiny_model, tmp_path):
    """distill_step_by_step weights its rationale task by ``rationale_weight``: at 0 a run on
    its rationale examples alone changes no weight, while its answer examples still train."""
    dss = [e.model_copy(update={"method": "distill_step_by_step"}) for e in EXAMPLES]
    rationales = [e.model_copy(update={"task": "rationale", "target": " Ann flips it."})
                  for e in dss]
    answers = [e.model_copy(update={"task": "answer", "target": " no"}) for e in dss]
    hparams = HParams(max_steps=3, learning_rate=3e-3, batch_size=4)
    methods = MethodParams(distill_step_by_step={"rationale_weight": 0.0})
    before = _weights(tiny_model)

    silent = train_student(rationales, str(tiny_model), "k", hparams, tmp_path / "r",
                           use_deepspeed=False, methods=methods)
    assert silent.steps == 3 and silent.final_loss == 0.0
    assert all(torch.equal(before[name], tensor)
               for name, tensor in _weights(tmp_path / "r").items())

    learned = train_student(answers, str(tiny_model), "k", hparams, tmp_path / "a",
                            use_deepspeed=False, methods=methods)
    assert learned.final_loss > 0.0
    assert any(not torch.equal(before[name], tensor)
               for name, tensor in _weights(tmp_path / "a").items())


def test_example_weights_reach_the_loss(tiny_model, tmp_path):
    """curate.hinted downweight: an example's weight multiplies its loss (0: not learned)."""
    silent = [e.model_copy(update={"weight": 0.0}) for e in EXAMPLES]
    hparams = HParams(max_steps=3, learning_rate=3e-3, batch_size=4, deepspeed="off")
    result = train_student(silent, str(tiny_model), "k", hparams, tmp_path / "out",
                           use_deepspeed=False)
    assert result.steps == 3 and result.final_loss == 0.0
    before, after = _weights(tiny_model), _weights(tmp_path / "out")
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_two_stage_cot_trains_on_the_pool_then_on_one_dataset(tiny_model, tmp_path):
    from cotdistill.student.training import train_stages

    other = [e.model_copy(update={"dataset": "last_letters", "id": f"ll-{i}"})
             for i, e in enumerate(EXAMPLES)]
    hparams = HParams(max_steps=4, learning_rate=3e-3, batch_size=4)
    result = train_stages(EXAMPLES + other, str(tiny_model), "k", hparams, tmp_path / "out",
                          use_deepspeed=False, two_stage=True,
                          methods=MethodParams(two_stage_cot={"dataset": "last_letters"}))
    assert result.steps == 8
    assert [step for step, _ in result.losses] == list(range(1, 9))
    # the second stage trained on the target dataset's examples alone
    assert (result.pooled_examples, result.examples) == (16, 8)
    assert (tmp_path / "out" / "model.safetensors").is_file()
    with pytest.raises(CotdistillError, match="no training examples of 'gsm8k'"):
        train_stages(EXAMPLES, str(tiny_model), "k", hparams, tmp_path / "x",
                     use_deepspeed=False, two_stage=True,
                     methods=MethodParams(two_stage_cot={"dataset": "gsm8k"}))


def test_auto_packing_pads_batches_grouped_by_length_unless_attention_is_varlen(tiny_model,
                                                                                tmp_path):
    """With sdpa or eager attention a packed row attends over every example under a mask (more
    work than padded rows of similar length), so auto pads, grouping examples by length."""
    from transformers import AutoModelForCausalLM

    from cotdistill.student.training import _varlen_attention

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert model.config._attn_implementation in ("sdpa", "eager")
    assert not _varlen_attention(model)
    model.config._attn_implementation = "flash_attention_2"
    assert _varlen_attention(model)

    seen = {}

    from transformers import TrainerCallback

    class Peek(TrainerCallback):
        def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
            seen["strategy"] = args.train_sampling_strategy
            seen["batch"] = next(iter(train_dataloader))

    varied = [e.model_copy(update={"target": e.target * (1 + i % 3)})
              for i, e in enumerate(EXAMPLES)]
    hparams = HParams(max_steps=2, learning_rate=1e-3, batch_size=4)
    train_student(varied, str(tiny_model), "k", hparams, tmp_path / "out", use_deepspeed=False,
                  extra_callbacks=[Peek()])
    assert seen["strategy"] == "group_by_length"
    assert seen["batch"]["input_ids"].shape[0] == 4  # padded rows, not one packed row


def test_a_max_length_that_cuts_every_target_is_refused_before_training(tiny_model, tmp_path):
    """Loss 0 and gradient 0 at every step would otherwise pass for a finished run."""
    hparams = HParams(max_steps=2, batch_size=4, deepspeed="off", max_length=4)
    with pytest.raises(CotdistillError, match=r"max_length 4 .*all \d+ training examples are "
                                              "cut before their first target token"):
        train_student(EXAMPLES, str(tiny_model), "students.tiny.model", hparams,
                      tmp_path / "out", use_deepspeed=False)
    assert not (tmp_path / "out").exists()


def test_only_calculator_students_have_their_results_masked_by_default(tiny_model):
    """mask_results is on by default; it touches fine_tune_cot_calc's examples alone. Socratic
    CoT's roles train through the same code without being registered methods, and a calculator
    result in their targets stays in the loss."""
    from transformers import AutoTokenizer

    from cotdistill.student.data import encode
    from cotdistill.student.training import _features

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    target = " He has 12 + 30 = 42 apples. --> 42"
    examples = [CuratedExample(id=f"q-{method}", dataset="multiarith", method=method, source=None,
                               input="How many apples? ###", target=target)
                for method in ("fine_tune_cot_calc", "fine_tune_cot", "socratic_qg",
                               "socratic_sqs")]
    assert MethodParams().fine_tune_cot_calc.mask_results
    features, _ = _features(examples, tokenizer, 64, False, MethodParams())
    plain = encode(tokenizer, examples[0].input, target, 64)["labels"]
    assert features[0]["labels"] != plain  # the calculator's 42 is out of the loss
    assert [f["labels"] for f in features[1:]] == [plain] * 3
