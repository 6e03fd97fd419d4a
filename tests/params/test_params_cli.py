"""What the user sees of a bad params file: one `error:` line naming the file they gave
(``--params FILE``, not params.yaml), the key and its line; exit status 1; nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.cli import cotdistill, one_error_line
from support.repo import REPO
from support.repository import apply_overrides, readme_experiment


@pytest.fixture()
def project(tmp_path) -> Path:
    """A directory with a valid params.yaml (the README's embedded experiment) and a copy of
    it, other.yaml, that each test spoils."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    apply_overrides(params, readme_experiment("embedded"))
    text = yaml.safe_dump(params, sort_keys=False)
    (tmp_path / "params.yaml").write_text(text)
    (tmp_path / "other.yaml").write_text(text)
    return tmp_path


def _spoil(project: Path, old: str, new: str) -> None:
    path = project / "other.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _line_of(project: Path, needle: str) -> int:
    lines = (project / "other.yaml").read_text().splitlines()
    return next(number for number, line in enumerate(lines, start=1) if needle in line)


def test_a_bad_value_in_the_given_params_file_names_that_file_key_and_line(project):
    _spoil(project, "  samples: 2\n", "  samples: true\n")
    line = one_error_line(cotdistill(project, "teacher", "--params", "other.yaml"))
    number = _line_of(project, "samples: true")
    assert line == (f"error: other.yaml: teacher.samples: Input should be a valid integer, "
                    f"not true/false (line {number})")
    assert not (project / "data").exists()


def test_an_error_found_after_loading_names_the_given_params_file(project):
    params = yaml.safe_load((project / "other.yaml").read_text())
    params["prepare"]["num_examples"] = 2  # too few for a test split
    (project / "other.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    line = one_error_line(cotdistill(project, "prepare", "--params", "other.yaml"))
    assert line.startswith("error: other.yaml: prepare: dataset ") and "empty" in line
    assert "params.yaml" not in line
    assert not (project / "data").exists()


@pytest.mark.parametrize(("text", "expected"), [
    ("teacher:\n  temperature: .inf\n",
     "error: bad.yaml: teacher.temperature: Input should be a finite number (line 2)"),
    ("train:\n  hparams:\n    learning_rate: .inf\n",
     "error: bad.yaml: train.hparams.learning_rate: Input should be a finite number (line 3)"),
    ("teacher:\n  samples: '2'\n",
     "error: bad.yaml: teacher.samples: Input should be a valid integer, not a string (line 2)"),
    ("teacher:\n  samples: 1\n  temperature: 0\n  samples: 2\n",
     ("error: bad.yaml:4: duplicate key teacher.samples (first given on line 2); give each "
      "key once")),
])
def test_a_strict_params_error_is_one_line(project, text, expected):
    (project / "bad.yaml").write_text(text)
    assert one_error_line(cotdistill(project, "prepare", "--params", "bad.yaml")) == expected


def test_a_params_file_that_is_not_utf8_is_one_line(project):
    (project / "bad.yaml").write_bytes(b"report:\n  title: r\xe9sum\xe9\n")
    line = one_error_line(cotdistill(project, "prepare", "--params", "bad.yaml"))
    assert line == "error: bad.yaml:2: not valid UTF-8 (byte 0xe9 at column 11); save the file " \
                   "as UTF-8"
    line = one_error_line(cotdistill(project, "params", "report", "--params", "bad.yaml"))
    assert line.startswith("error: bad.yaml:2: not valid UTF-8")


def test_a_params_file_given_but_missing_is_named_even_by_the_params_command(project):
    for command in (["prepare"], ["params", "teacher"]):
        line = one_error_line(cotdistill(project, *command, "--params", "nowhere.yaml"))
        assert line == "error: nowhere.yaml: params file not found"
