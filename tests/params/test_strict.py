"""Specification of strict params: a value must already have its key's type, floats are finite,
a key is given once, the file is UTF-8, and every error names the file, the key and its line.

params.yaml is read with YAML 1.2's core schema, as DVC reads it: ``1e-4`` is a float and only
true / false are booleans.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cotdistill.errors import CotdistillError
from cotdistill.params import load_params
from cotdistill.params.yaml_reader import read_params_yaml


def _write(tmp_path: Path, text: str | bytes, name: str = "params.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


@pytest.mark.parametrize(("text", "key", "line", "given"), [
    ("teacher:\n  samples: true\n", "teacher.samples", 2, "not true/false"),
    ("teacher:\n  seed: 0\n  samples: '2'\n", "teacher.samples", 3, "not a string"),
    ('prepare:\n  num_examples: "500"\n', "prepare.num_examples", 2, "not a string"),
    ("teacher:\n  samples: 2.0\n", "teacher.samples", 2, "not a float"),
    ("curate:\n  drop_truncated: 1\n", "curate.drop_truncated", 2, "not an integer"),
    ('train:\n  hparams:\n    learning_rate: "1e-4"\n', "train.hparams.learning_rate", 3,
     "not a string"),
    ("teacher:\n  model: 7\n", "teacher.model", 2, "not an integer"),
])
def test_a_value_of_the_wrong_type_is_refused_not_converted(tmp_path, text, key, line, given):
    with pytest.raises(CotdistillError) as info:
        load_params(_write(tmp_path, text, name="mine.yaml"))
    message = str(info.value)
    assert message.startswith(f"mine.yaml: {key}: ") or f"/mine.yaml: {key}: " in message
    assert given in message and message.endswith(f"(line {line})")


@pytest.mark.parametrize(("text", "key"), [
    ("teacher:\n  temperature: .inf\n", "teacher.temperature"),
    ("teacher:\n  temperature: .nan\n  samples: 1\n", "teacher.temperature"),
    ("train:\n  hparams:\n    learning_rate: .inf\n", "train.hparams.learning_rate"),
    ("train:\n  hparams:\n    learning_rate: .NaN\n", "train.hparams.learning_rate"),
    ("train:\n  hparams:\n    epochs: .inf\n", "train.hparams.epochs"),
    ("teacher:\n  max_usd: .inf\n", "teacher.max_usd"),
    ("teacher:\n  prices:\n    gpt-4o-mini: {prompt: .inf, completion: 0.6}\n",
     "teacher.prices.gpt-4o-mini.prompt"),
])
def test_an_infinite_or_nan_float_is_refused(tmp_path, text, key):
    with pytest.raises(CotdistillError, match=rf"{key.replace('.', '[.]')}: .*finite number"):
        load_params(_write(tmp_path, text))


def test_an_int_is_still_a_float_and_every_kind_of_value_still_validates(tmp_path):
    text = """\
prepare:
  datasets: [coin_flip_generated]
  val_fraction: 0
teacher:
  temperature: 0
  samples: 1
  prices:
    m: {prompt: 1, completion: 2}
  base_url: http://127.0.0.1:8000/v1
train:
  hparams:
    learning_rate: 1
    epochs: 2
    warmup_ratio: 0
    deepspeed: off
    packing: false
    lora: {r: 4, target_modules: [q_proj, v_proj]}
    kd: {source: logprobs}
students:
  smollm2-135m: {model: builtin:SmolLM2-135M-Instruct}
  tiny: {model: ./models/tiny}
evaluate:
  baselines: [zero_shot]
  max_examples: null
mlflow:
  tracking_uri: sqlite:///mlflow.db
"""
    params = load_params(_write(tmp_path, text))
    assert params.teacher.temperature == 0.0 and isinstance(params.teacher.temperature, float)
    assert params.train.hparams.learning_rate == 1.0 and params.train.hparams.epochs == 2.0
    assert params.teacher.prices["m"].completion == 2.0
    assert params.train.hparams.deepspeed == "off"  # YAML 1.2: `off` is a string, as for DVC
    assert params.train.hparams.lora.target_modules == ["q_proj", "v_proj"]
    assert params.student("tiny").model == "./models/tiny"
    assert params.evaluate.baselines == ["zero_shot"]


@pytest.mark.parametrize(("text", "value"), [
    ("x: 1e-4\n", 1e-4), ("x: 5.0e-5\n", 5e-5), ("x: -2E3\n", -2000.0), ("x: 1_000\n", 1000),
    ("x: 017\n", 17), ("x: 0x1f\n", 31), ("x: 0o17\n", 15), ("x: true\n", True),
    ("x: yes\n", "yes"), ("x: on\n", "on"), ("x: 1:30\n", "1:30"), ("x: 2024-01-01\n", "2024-01-01"),
    ("x: ~\n", None), ("x: .inf\n", float("inf")),
])
def test_params_are_read_with_the_yaml_1_2_core_schema_as_dvc_reads_them(tmp_path, text, value):
    data, _ = read_params_yaml(_write(tmp_path, text))
    assert data["x"] == value and type(data["x"]) is type(value)


@pytest.mark.parametrize(("text", "line", "key", "first"), [
    ("teacher:\n  samples: 1\n  samples: 2\n", 3, "teacher.samples", 2),
    ("teacher:\n  samples: 1\nprepare:\n  seed: 1\nteacher:\n  seed: 2\n", 5, "teacher", 1),
    ("train:\n  hparams:\n    lora: {r: 4, r: 8}\n", 3, "train.hparams.lora.r", 3),
    ("students:\n  a:\n    model: x\n  a:\n    model: y\ntrain:\n  students: [a]\n", 4,
     "students.a", 2),
])
def test_a_key_given_twice_is_an_error_naming_file_line_and_key(tmp_path, text, line, key, first):
    path = _write(tmp_path, text, name="p.yaml")
    with pytest.raises(CotdistillError) as info:
        load_params(path)
    assert str(info.value) == (f"{path}:{line}: duplicate key {key} (first given on line "
                               f"{first}); give each key once")


def test_a_params_file_that_is_not_utf8_names_file_and_line(tmp_path):
    path = _write(tmp_path, b"teacher:\n  samples: 1\n  model: caf\xe9\n", name="p.yaml")
    with pytest.raises(CotdistillError) as info:
        load_params(path)
    assert str(info.value).startswith(f"{path}:3: not valid UTF-8 (byte 0xe9 at column 13)")


def test_every_validation_error_names_the_line_of_its_key(tmp_path):
    path = _write(tmp_path, "teacher:\n  samples: many\n  colour: red\nprepare:\n"
                            "  datasets: [coin_flip_generated, gsm9k]\n")
    with pytest.raises(CotdistillError) as info:
        load_params(path)
    message = str(info.value)
    assert "teacher.samples: Input should be a valid integer, not a string (line 2)" in message
    assert "teacher.colour: unknown key (line 3)" in message
    assert "prepare.datasets: unknown dataset 'gsm9k'" in message and "(line 5)" in message
