"""``cotdistill.params.describe``: every key documented, with its type, default and value."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from cotdistill.errors import CotdistillError
from cotdistill.params import Params
from cotdistill.params.base import Section
from cotdistill.params.describe import describe_params, render_params, sections

REPO = Path(__file__).resolve().parents[2]


def _models(model: type[BaseModel], seen: dict[str, type[BaseModel]]) -> dict[str, type[BaseModel]]:
    """``model`` and every section model reachable from its fields' types."""
    seen[model.__name__] = model

    def visit(annotation: Any) -> None:
        if (isinstance(annotation, type) and issubclass(annotation, Section)
                and annotation.__name__ not in seen):
            _models(annotation, seen)
        for arg in typing.get_args(annotation):
            visit(arg)

    for field in model.model_fields.values():
        visit(field.annotation)
    return seen


def _by_key(docs):
    return {doc.key: doc for doc in docs}


def test_every_field_of_every_section_has_a_description():
    models = _models(Params, {})
    assert {"TeacherParams", "HParams", "LoraParams", "KDParams", "Student",
            "SocraticParams"} <= set(models)
    missing = [f"{name}.{field}" for name, model in models.items()
               for field, info in model.model_fields.items()
               if not (info.description or "").strip()]
    assert not missing, f"fields without a description: {missing}"


def test_every_listed_key_has_a_description_and_a_type():
    docs = describe_params()
    assert len(docs) > 100
    assert all(doc.description.strip() and doc.type.strip() for doc in docs)
    top = [doc.key for doc in docs if "." not in doc.key]
    assert top == sections() == list(Params.model_fields)


def test_the_teacher_section_lists_samples_with_its_default_and_description():
    docs = _by_key(describe_params("teacher"))
    samples = docs["teacher.samples"]
    assert samples.default == 2 and not samples.required
    assert samples.type == "int > 0"
    assert "reasoning samples per question" in samples.description
    assert samples.set_in is None
    assert all(key == "teacher" or key.startswith("teacher.") for key in docs)


def test_an_unknown_section_is_a_clear_error():
    with pytest.raises(CotdistillError, match=r"unknown params section 'trian'") as info:
        describe_params("trian")
    assert "teacher" in str(info.value) and "socratic" in str(info.value)


@pytest.mark.parametrize(("key", "text"), [
    ("train.hparams.lr_scheduler", "linear | cosine | constant | constant_with_warmup"),
    ("teacher.samples", "int > 0"),
    ("teacher.max_questions", "null | int > 0"),
    ("teacher.max_retries", "int >= 0"),
    ("teacher.top_logprobs", "null | int in [1, 20]"),
    ("teacher.api_key_env", "str matching ^[A-Za-z_][A-Za-z0-9_]*$"),
    ("teacher.prices", "mapping of str -> {prompt, completion, batch_discount}"),
    ("prepare.val_fraction", "float in [0, 1)"),
    ("prepare.datasets", "list of (str | {name, path, test_path, format, hub, revision, config, "
                         "train_split, test_split, test_fraction, question, answer, choices, "
                         "id, answer_type, prompts, decontamination})"),
    ("curate.dedupe_threshold", "null | float in (0, 1]"),
    ("evaluate.baselines", "list of (zero_shot | zero_shot_cot | few_shot_cot)"),
    ("train.hparams", "mapping"),
    ("train.hparams.lora", "null | mapping"),
    ("train.hparams.lora.target_modules", "str | list of str"),
    ("students", "mapping of str -> {model}"),
    ("students.<name>.model", "str"),
])
def test_types_read_plainly(key, text):
    assert _by_key(describe_params())[key].type == text


def test_nested_keys_have_the_defaults_a_file_gets():
    docs = _by_key(describe_params())
    assert docs["socratic.hparams.max_length"].default == 256
    assert docs["train.hparams.max_length"].default == 192
    assert docs["train.hparams.lora"].default is None and docs["train.hparams.lora.r"].default == 8
    assert docs["students.<name>.model"].required
    defaults = Params()
    for doc in docs.values():
        if "<name>" in doc.key or doc.key.startswith(("train.hparams.lora.", "train.hparams.kd.",
                                                       "socratic.hparams.lora.",
                                                       "socratic.hparams.kd.",
                                                       "socratic.teacher.")):
            continue
        value = defaults
        for part in doc.key.split("."):
            value = getattr(value, part)
        plain = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
        if isinstance(value, dict):
            plain = {k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v
                     for k, v in value.items()}
        assert doc.default == plain, doc.key


def test_a_params_file_gives_the_values_it_sets_and_only_those(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("teacher:\n  samples: 5\ntrain:\n  hparams:\n    lora: {r: 4}\n",
                    encoding="utf-8")
    docs = _by_key(describe_params(params_file=path))
    assert (docs["teacher.samples"].set_in, docs["teacher.samples"].value) == ("mine.yaml", 5)
    assert docs["teacher.samples"].default == 2
    assert docs["teacher.temperature"].set_in is None
    assert docs["train.hparams.lora.r"].value == 4
    assert docs["train.hparams.lora.alpha"].set_in is None
    assert docs["prepare"].set_in is None
    text = render_params([docs["teacher.samples"], docs["teacher.temperature"]])
    assert "default 2; mine.yaml: 5" in text
    assert "mine.yaml" not in text.split("teacher.temperature")[1]


def test_the_repository_params_yaml_describes(tmp_path):
    docs = _by_key(describe_params("teacher", params_file=REPO / "params.yaml"))
    assert docs["teacher.max_rationale_tokens"].value == 64
    assert docs["teacher.max_rationale_tokens"].default == 96


def test_a_broken_params_file_is_the_loading_error(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("teacher:\n  samples: 0\n", encoding="utf-8")
    with pytest.raises(CotdistillError, match=r"p\.yaml: teacher\.samples"):
        describe_params("teacher", params_file=path)


@pytest.mark.parametrize("width", [100, 80, 60])
def test_the_text_fits_the_width(width):
    text = render_params(describe_params(params_file=REPO / "params.yaml"), width=width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "teacher.samples" in text


def test_the_text_has_key_type_default_then_the_indented_description():
    text = render_params(describe_params("teacher"))
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("teacher.samples "))
    assert lines[at].split() == ["teacher.samples", "int", ">", "0;", "default", "2"]
    assert lines[at + 1].startswith("    D: diverse reasoning samples per question")
