"""Specification of params.yaml loading: defaults, and one clear error naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cotdistill.errors import CotdistillError
from cotdistill.params import Params, load_params

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str, name: str = "params.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text", ["", "# nothing but a comment\n", "{}\n"])
def test_an_empty_file_is_an_error_not_the_defaults(tmp_path, text):
    """The defaults would rebuild data/prepared and start a teacher on data nobody chose."""
    with pytest.raises(CotdistillError, match="params.yaml: the params file is empty"):
        load_params(_write(tmp_path, text))


def test_one_section_is_enough_and_the_rest_are_defaults(tmp_path):
    params = load_params(_write(tmp_path, "teacher:\n  samples: 2\n"))
    assert params.teacher.samples == 2 and params.train == Params().train


def test_the_defaults_are_those_documented():
    params = Params()
    assert params.prepare.datasets == ["coin_flip_generated", "last_letter_concatenation_generated"]
    assert params.prepare.num_examples == 500 and params.prepare.num_items == 4
    assert params.train.methods == ["fine_tune_cot", "answer_only"]
    assert params.train.students == ["smollm2-135m"]
    assert params.curate.max_per_question is None


def test_the_repository_params_yaml_is_valid():
    params = load_params(REPO / "params.yaml")
    assert set(params.train.students) <= set(params.students)


def test_given_values_override_the_defaults_and_the_rest_stay_default(tmp_path):
    path = _write(tmp_path, "teacher:\n  samples: 5\ntrain:\n  hparams:\n    learning_rate: 1e-4\n")
    params = load_params(path)
    assert params.teacher.samples == 5
    assert params.train.hparams.learning_rate == pytest.approx(1e-4)
    assert params.teacher.temperature == Params().teacher.temperature
    assert params.prepare == Params().prepare


def test_socratic_hparams_given_in_part_keep_socratic_max_length(tmp_path):
    params = load_params(_write(tmp_path, "socratic:\n  hparams:\n    max_steps: 4\n"))
    assert params.socratic.hparams.max_length == Params().socratic.hparams.max_length == 256
    assert params.socratic.hparams.max_steps == 4
    assert params.train.hparams.max_length == 192  # train's own default is untouched
    path = _write(tmp_path, "socratic:\n  hparams:\n    max_length: 64\n")
    assert load_params(path).socratic.hparams.max_length == 64


def test_params_are_frozen(tmp_path):
    params = load_params(_write(tmp_path, "teacher:\n  samples: 1\n"))
    with pytest.raises(ValidationError, match="frozen"):
        params.teacher.samples = 3  # type: ignore[misc]


def test_a_misspelt_key_names_file_key_and_unknown_key(tmp_path):
    path = _write(tmp_path, "train:\n  hparams:\n    lerning_rate: 1\n", name="myparams.yaml")
    with pytest.raises(CotdistillError) as info:
        load_params(path)
    message = str(info.value)
    assert "myparams.yaml" in message
    assert "train.hparams.lerning_rate" in message
    assert "unknown key" in message


def test_an_unknown_section_is_rejected(tmp_path):
    with pytest.raises(CotdistillError, match=r"trian: unknown key"):
        load_params(_write(tmp_path, "trian:\n  students: []\n"))


def test_an_ill_typed_value_names_the_key(tmp_path):
    path = _write(tmp_path, "teacher:\n  samples: many\n")
    with pytest.raises(CotdistillError, match=r"params\.yaml: teacher\.samples: .*integer"):
        load_params(path)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("teacher:\n  samples: 0\n", "teacher.samples"),
        ("prepare:\n  num_examples: -1\n", "prepare.num_examples"),
        ("prepare:\n  test_fraction: 1.5\n", "prepare.test_fraction"),
        ("train:\n  hparams:\n    deepspeed: maybe\n", "train.hparams.deepspeed"),
        ("teacher:\n  backend: carrier-pigeon\n", "teacher.backend"),
    ],
)
def test_an_out_of_range_value_names_the_key(tmp_path, text, key):
    with pytest.raises(CotdistillError, match=key.replace(".", r"\.")):
        load_params(_write(tmp_path, text))


def test_an_unknown_dataset_is_named(tmp_path):
    path = _write(tmp_path, "prepare:\n  datasets: [coin_flip_generated, gsm9k]\n")
    with pytest.raises(CotdistillError, match=r"prepare\.datasets: unknown dataset 'gsm9k'"):
        load_params(path)


def test_an_unknown_held_out_task_is_named_with_its_key(tmp_path):
    path = _write(tmp_path, "evaluate:\n  transfer_datasets: [multiarith, svamp2]\n")
    with pytest.raises(CotdistillError,
                       match=r"evaluate\.transfer_datasets: .*unknown dataset\(s\) svamp2"):
        load_params(path)


def test_a_held_out_task_that_is_trained_on_is_not_held_out(tmp_path):
    params = load_params(_write(tmp_path, "prepare:\n  datasets: [multiarith]\nevaluate:\n"
                                          "  transfer_datasets: [multiarith, svamp]\n"))
    assert params.evaluate.held_out(params.prepare.names) == ["svamp"]


def test_a_transfer_probe_does_not_stop_a_run_that_turns_model_selection_off(tmp_path):
    """The probe scores at validation scorings: with none (select_every null) it has nothing
    to do, so params.yaml's probe is accepted beside it, not refused. (That no probe is then
    scored is the report's and the training tests' to show.)"""
    params = load_params(_write(tmp_path, "train:\n  hparams:\n    select_every: null\n"
                                          "    transfer_probe: 5\n"))
    assert params.train.hparams.select_every is None


def test_a_dataset_listed_twice_is_rejected(tmp_path):
    path = _write(tmp_path, "prepare:\n  datasets: [coin_flip_generated, coin_flip_generated]\n")
    with pytest.raises(CotdistillError, match="listed twice"):
        load_params(path)


def test_no_datasets_is_rejected(tmp_path):
    with pytest.raises(CotdistillError, match="at least one dataset"):
        load_params(_write(tmp_path, "prepare:\n  datasets: []\n"))


def test_fractions_must_leave_room_for_train(tmp_path):
    path = _write(tmp_path, "prepare:\n  val_fraction: 0.5\n  test_fraction: 0.5\n")
    with pytest.raises(CotdistillError, match="leave room for train"):
        load_params(path)


def test_an_unknown_method_is_named(tmp_path):
    path = _write(tmp_path, "train:\n  methods: [fine_tune_cot, magic]\n")
    with pytest.raises(CotdistillError, match=r"train\.methods: unknown method 'magic'"):
        load_params(path)


def test_train_students_must_name_a_defined_student(tmp_path):
    path = _write(tmp_path, "train:\n  students: [ghost]\n")
    with pytest.raises(CotdistillError, match=r"train\.students names 'ghost'"):
        load_params(path)


def test_train_students_may_name_a_student_defined_in_the_file(tmp_path):
    path = _write(
        tmp_path, "students:\n  tiny:\n    model: ./models/tiny\ntrain:\n  students: [tiny]\n"
    )
    params = load_params(path)
    assert params.student("tiny").model == "./models/tiny"


def test_asking_for_an_undefined_student_names_the_key():
    with pytest.raises(CotdistillError, match=r"students\.ghost: no such student"):
        Params().student("ghost")


def test_a_student_name_must_be_path_safe(tmp_path):
    path = _write(tmp_path, "students:\n  ../evil:\n    model: x\ntrain:\n  students: []\n")
    with pytest.raises(CotdistillError, match="student name '../evil'"):
        load_params(path)


def test_greedy_teacher_with_several_samples_is_rejected(tmp_path):
    path = _write(tmp_path, "teacher:\n  temperature: 0\n  samples: 2\n")
    with pytest.raises(CotdistillError, match="samples to 1"):
        load_params(path)


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = _write(tmp_path, "prepare:\n  seed: 0\n  datasets: [coin_flip\nteacher:\n", name="p.yaml")
    with pytest.raises(CotdistillError, match=r"p\.yaml:\d+: not valid YAML") as info:
        load_params(path)
    line = int(str(info.value).split(":")[1])
    assert 3 <= line <= 5


def test_invalid_yaml_points_at_the_offending_line(tmp_path):
    path = _write(tmp_path, "prepare:\n  seed: 0\n  seed: : :\n", name="p.yaml")
    with pytest.raises(CotdistillError, match=r"p\.yaml:3: not valid YAML"):
        load_params(path)


def test_a_top_level_that_is_not_a_mapping_is_rejected(tmp_path):
    with pytest.raises(CotdistillError, match="top level must be a mapping"):
        load_params(_write(tmp_path, "- prepare\n- teacher\n"))


def test_a_missing_file_is_named(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(CotdistillError, match=r"nowhere\.yaml: params file not found"):
        load_params(missing)


def test_several_problems_are_reported_in_one_error(tmp_path):
    path = _write(tmp_path, "teacher:\n  samples: many\n  colour: red\n")
    with pytest.raises(CotdistillError) as info:
        load_params(path)
    assert "teacher.samples" in str(info.value) and "teacher.colour: unknown key" in str(info.value)


@pytest.mark.parametrize("kd, message", [
    ("{source: logprobs, teacher: builtin:SmolLM2-135M-Instruct}", "leave teacher out"),
    ("{weight: 0.5}", "needs teacher"),
    ("{source: logits}", "source"),
    ("{source: logprobs, temperature: 2.0}", "temperature must be 1"),
])
def test_a_kd_section_naming_the_wrong_teacher_is_refused_with_its_key(tmp_path, kd, message):
    path = _write(tmp_path, f"train:\n  hparams:\n    kd: {kd}\n")
    with pytest.raises(CotdistillError, match=message) as info:
        load_params(path)
    assert "params.yaml: train.hparams.kd" in str(info.value)


def test_a_key_that_moved_to_its_method_is_one_line_naming_the_new_place(tmp_path):
    path = _write(tmp_path, "train:\n  hparams:\n    rationale_weight: 0.5\n")
    with pytest.raises(CotdistillError) as info:
        load_params(path)
    message = str(info.value)
    assert "\n" not in message
    assert "train.hparams" in message
    assert "moved to train.method_params.distill_step_by_step.rationale_weight" in message
    moved = load_params(_write(tmp_path, "train:\n  method_params:\n    two_stage_cot:\n"
                                         "      dataset: addsub\n"))
    assert moved.train.method_params.two_stage_cot.dataset == "addsub"


def test_other_trainer_settings_pass_through_and_each_setting_has_one_name(tmp_path):
    """train.hparams.trainer takes any TrainingArguments field, but not one that a named key
    (or cotdistill itself) sets, and not a field TrainingArguments does not have."""
    from cotdistill.student.training import training_arguments

    params = load_params(_write(tmp_path, "train:\n  hparams:\n    learning_rate: 0.001\n"
                                          "    trainer: {max_grad_norm: 0.25, adam_beta2: 0.95}\n"))
    arguments = training_arguments(params.train.hparams, str(tmp_path), "fp32", False)
    assert arguments["max_grad_norm"] == 0.25 and arguments["adam_beta2"] == 0.95
    assert arguments["learning_rate"] == 0.001
    assert arguments["per_device_train_batch_size"] == params.train.hparams.batch_size
    for given, named in (("learning_rate: 0.1", "set by train.hparams.learning_rate"),
                         ("per_device_train_batch_size: 2", "set by train.hparams.batch_size"),
                         ("save_strategy: steps", "set by cotdistill")):
        path = _write(tmp_path, f"train:\n  hparams:\n    trainer: {{{given}}}\n")
        with pytest.raises(CotdistillError, match=named):
            load_params(path)


def test_a_trainer_setting_that_training_arguments_lacks_is_refused_before_training(tmp_path):
    from cotdistill.student.training import check_trainer_settings

    path = _write(tmp_path, "train:\n  hparams:\n    trainer: {adam_beta9: 0.9}\n")
    hparams = load_params(path).train.hparams  # params cannot know: transformers can
    with pytest.raises(CotdistillError, match=r"train.hparams.trainer.adam_beta9: not a field"):
        check_trainer_settings(hparams, "train.hparams")
    check_trainer_settings(load_params(_write(tmp_path, "teacher:\n  samples: 1\n")).train.hparams, "train.hparams")


@pytest.mark.parametrize("name", ["teacher", "train"])
def test_a_user_dataset_may_not_take_the_name_of_a_params_section(tmp_path, name):
    """reports/metrics.json groups each dataset's figures under its name, beside the teacher's
    group, and `make results` tells them from params by name."""
    from cotdistill import layout

    path = _write(tmp_path, f"prepare:\n  datasets:\n    - name: {name}\n"
                            f"      path: data/raw/{name}.jsonl\n      answer_type: number\n")
    with pytest.raises(CotdistillError, match=f"prepare.datasets names '{name}', which is a "
                                              "section of the params"):
        load_params(path)
    assert layout.METRICS_TEACHER in Params.model_fields
