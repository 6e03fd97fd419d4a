"""Bad input: one clear `error:` line naming the file, line or key; exit 1; nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.cli import cotdistill, one_error_line
from support.repo import REPO
from support.repository import apply_overrides, readme_experiment

CLI = [str(Path(sys.executable).parent / "cotdistill")]


@pytest.fixture()
def project(tmp_path) -> Path:
    """The repository's params with the README's embedded experiment: no data files needed."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    apply_overrides(params, readme_experiment("embedded"))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


def edit_params(project: Path, **sections) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    for section, values in sections.items():
        params[section] = values if not isinstance(params.get(section), dict) else {
            **params[section], **values}
    (project / "params.yaml").write_text(yaml.safe_dump(params))


def test_every_command_has_help():
    for command in ("", "prepare", "teacher", "curate", "train", "evaluate", "report"):
        result = cotdistill(REPO, *filter(None, [command]), "--help")
        assert result.returncode == 0 and "Usage" in result.stdout


def test_params_prints_every_key_of_a_section_with_its_default_value_and_description(project):
    edit_params(project, teacher={"samples": 3})
    result = cotdistill(project, "params", "teacher")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("teacher.samples "))
    assert "int > 0" in line and "default 2" in line and "params.yaml: 3" in line
    assert "diverse reasoning samples per question" in result.stdout
    assert all(len(line) <= 100 for line in result.stdout.splitlines())


def test_params_names_the_known_sections_for_an_unknown_one(project):
    assert "known: prepare, teacher" in one_error_line(cotdistill(project, "params", "trian"))


def test_estimate_before_prepare_says_to_run_prepare_first(project):
    line = one_error_line(cotdistill(project, "estimate"))
    assert "data/prepared/train.jsonl: not found: run `dvc repro prepare`" in line


def test_an_unknown_dataset_name_stops_prepare_and_writes_nothing(project):
    edit_params(project, prepare={"datasets": ["coin_flip_generated", "coin_flop"]})
    line = one_error_line(cotdistill(project, "prepare"))
    assert "params.yaml" in line and "prepare.datasets" in line and "'coin_flop'" in line
    assert not (project / "data").exists()


def test_an_unknown_params_key_names_the_key_and_the_file(project):
    edit_params(project, teacher={"temprature": 0.5})
    line = one_error_line(cotdistill(project, "teacher"))
    lines = (project / "params.yaml").read_text().splitlines()
    number = next(n for n, text in enumerate(lines, start=1) if "temprature" in text)
    assert line == f"error: params.yaml: teacher.temprature: unknown key (line {number})"


def test_an_empty_split_stops_prepare_and_writes_nothing(project):
    edit_params(project, prepare={"num_examples": 2})
    line = one_error_line(cotdistill(project, "prepare"))
    assert "empty" in line and "split" in line and "prepare.num_examples" in line
    assert not (project / "data").exists()


def test_a_malformed_prepared_file_names_file_and_line(project):
    assert cotdistill(project, "prepare").returncode == 0
    train = project / "data/prepared/train.jsonl"
    lines = train.read_text().splitlines()
    lines[2] = lines[2][:40]  # a truncated record
    train.write_text("\n".join(lines) + "\n")
    line = one_error_line(cotdistill(project, "teacher"))
    assert line == "error: data/prepared/train.jsonl:3: not valid JSON"
    assert not (project / "data/teacher").exists()


def test_a_record_breaking_the_contract_names_the_field(project):
    assert cotdistill(project, "prepare").returncode == 0
    train = project / "data/prepared/train.jsonl"
    train.write_text(train.read_text().replace('"split":"train"', '"split":"training"', 1))
    line = one_error_line(cotdistill(project, "teacher"))
    assert line.startswith("error: data/prepared/train.jsonl:1: split:")


def test_an_empty_training_split_is_refused(project):
    assert cotdistill(project, "prepare").returncode == 0
    (project / "data/prepared/train.jsonl").write_text("")
    line = one_error_line(cotdistill(project, "teacher"))
    assert line == "error: data/prepared/train.jsonl: is empty (no records)"


def test_a_missing_model_path_names_the_key_and_writes_nothing(project):
    edit_params(project, students={"ghost": {"model": "./no/such/model"}},
                train={"students": ["ghost"]})
    (project / "data/curated").mkdir(parents=True)
    (project / "data/curated/answer_only.jsonl").write_text(
        '{"id":"a","dataset":"coin_flip","method":"answer_only","source":null,'
        '"input":"q ###","target":" yes"}\n')
    line = one_error_line(cotdistill(project, "train", "--student", "ghost",
                                     "--method", "answer_only"))
    assert line == "error: students.ghost.model: model path not found: ./no/such/model"
    assert not (project / "models").exists() and not (project / "mlflow.db").exists()


def test_an_unknown_student_or_method_is_refused(project):
    line = one_error_line(cotdistill(project, "train", "--student", "nobody",
                                     "--method", "answer_only"))
    assert "students.nobody" in line
    line = one_error_line(cotdistill(project, "train", "--student", "smollm2-135m",
                                     "--method", "magic"))
    assert "unknown method 'magic'" in line


def test_a_prepared_file_with_a_byte_that_is_not_utf8_names_file_and_line(project):
    assert cotdistill(project, "prepare").returncode == 0
    train = project / "data/prepared/train.jsonl"
    lines = train.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"question":"', b'"question":"\xff', 1)
    train.write_bytes(b"".join(lines))
    line = one_error_line(cotdistill(project, "teacher"))
    assert line.startswith("error: data/prepared/train.jsonl:2: not valid UTF-8 (byte 0xff ")
    assert not (project / "data/teacher").exists()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("correct", "no", "correct: Input should be a valid boolean, not a string"),
    ("sample", "0", "sample: Input should be a valid integer, not a string"),
])
def test_a_completion_with_a_value_of_the_wrong_type_is_refused(project, field, value, message):
    assert cotdistill(project, "prepare").returncode == 0
    first = json.loads((project / "data/prepared/train.jsonl").read_text().splitlines()[0])
    record = {"id": first["id"], "dataset": first["dataset"], "sample": 0, "backend": "openai",
              "model": "m", "prompt_id": "zero_shot_cot", "sampling": {"temperature": 0.0},
              "rationale": "r", "answer_text": "yes", "prediction": "yes", "correct": True}
    completions = project / "data/teacher/completions.jsonl"
    completions.parent.mkdir(parents=True)
    completions.write_text(json.dumps(record) + "\n" + json.dumps({**record, field: value}) + "\n")
    line = one_error_line(cotdistill(project, "curate"))
    assert line == f"error: data/teacher/completions.jsonl:2: {message}"
    assert not (project / "data/curated").exists()


def test_minus_h_is_help_and_version_prints_the_version(tmp_path):
    from cotdistill import __version__

    assert cotdistill(tmp_path, "-h").stdout == cotdistill(tmp_path, "--help").stdout
    assert "Usage: cotdistill" in cotdistill(tmp_path, "train", "-h").stdout
    assert cotdistill(tmp_path, "--version").stdout.strip() == f"cotdistill {__version__}"


def test_method_help_names_every_method_the_registries_hold(tmp_path):
    from cotdistill.methods.registry import METHODS
    from cotdistill.params.evaluate import BASELINES

    wide = {**os.environ, "COLUMNS": "400"}  # one line per paragraph: names are not split
    for command, names in (("train", METHODS), ("evaluate", METHODS), ("baseline", BASELINES)):
        shown = subprocess.run([*CLI, command, "--help"], capture_output=True, text=True,
                               env=wide, check=True).stdout
        assert all(name in shown for name in names), (command, shown)


def test_help_paragraphs_wrap_to_the_terminal_not_to_the_source(tmp_path):
    wide = {**os.environ, "COLUMNS": "400"}
    shown = subprocess.run([*CLI, "teacher", "--help"], capture_output=True, text=True,
                           env=wide, check=True).stdout
    assert any(line.strip().startswith("Exits 1 without writing completions") and
               line.strip().endswith("asks only for what is missing.")
               for line in shown.splitlines())
