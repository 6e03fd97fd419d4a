"""The pydantic defaults and the repository's ``params.yaml`` agree, except where it says why.

A default is what a params file gets when it leaves the key out. ``params.yaml`` may set a
different value on purpose (mostly: it keeps the default pipeline small enough to run in about
15 minutes on a 2-core CPU, where a file that leaves the key out gets the full-size value);
every such key is in DELIBERATE with its reason. Any other difference fails, as does a
DELIBERATE entry that no longer differs and a params.yaml key the models do not know.

The default of a key is found the way a params file meets it: the key is removed from
params.yaml and the rest validated, so a nested mapping given in part (``socratic.hparams``)
is judged by what its left-out keys really become.
"""

from __future__ import annotations

import copy
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from cotdistill.params import Params, load_params

REPO = Path(__file__).resolve().parents[2]
PARAMS_YAML = REPO / "params.yaml"

CPU = "the default pipeline's CPU-sized value (about 15 minutes on 2 cores); "
DELIBERATE = {
    "students": "params.yaml also names the optional second family, gemma-3-270m (make setup-gemma), for -S train.students=[...]; the default has only SmolLM2, which the default set-up installs",
    "prepare.datasets": "the default pipeline replays the published text-davinci-002 runs (one greedy completion per question) on a published dataset; a params file that omits it gets the in-process model teacher on generated data, which needs no data files at all",
    "teacher.backend": "the default pipeline replays the published text-davinci-002 runs (one greedy completion per question) on a published dataset; a params file that omits it gets the in-process model teacher on generated data, which needs no data files at all",
    "teacher.samples": "the default pipeline replays the published text-davinci-002 runs (one greedy completion per question) on a published dataset; a params file that omits it gets the in-process model teacher on generated data, which needs no data files at all",
    "teacher.temperature": "the default pipeline replays the published text-davinci-002 runs (one greedy completion per question) on a published dataset; a params file that omits it gets the in-process model teacher on generated data, which needs no data files at all",
    "socratic.teacher.samples":
        "decompositions need a model to ask and the default pipeline's teacher is a replay: the "
        "in-process SmolLM2 writes one greedy decomposition; left out, socratic.teacher is null "
        "and the teacher section's teacher decomposes",
    "socratic.teacher.temperature": "see socratic.teacher.samples: one greedy decomposition",
    "evaluate.max_examples":
        CPU + "the first 50 of Coin Flip's 150 published test questions (the split's order); "
              "left out, the whole test split",
    "train.hparams.learning_rate":
        "the default pipeline trains for one epoch only, at a rate fixed before the run (1e-4, "
        "a usual full fine-tuning rate at 135M); the default 5e-5 suits longer runs",
    "teacher.max_rationale_tokens":
        CPU + "64 tokens hold the short rationales of the two generated datasets; the default "
              "96 leaves room for longer ones (GSM8K and the other published datasets)",
    "teacher.max_answer_tokens":
        CPU + "8 tokens hold the generated datasets' answers (yes / no, four letters); the "
              "default 16 leaves room for numbers and dates, tokenized digit by digit",
    "exemplars.k":
        CPU + "4 exemplars halve the few-shot prompt the teacher_fewshot pass reads before "
              "every question; 8 clusters per dataset otherwise",
    "teacher_fewshot.max_questions":
        CPU + "left out, the few-shot pass follows teacher.max_questions",
    "train.hparams.select_every":
        "the default pipeline keeps the best of its one epoch's checkpoints on validation, "
        "every 10 steps (four points on Coin Flip's curves); a useful interval depends on the "
        "length of the run, so selection is off unless asked for",
    "train.hparams.transfer_probe":
        "the default pipeline draws the cost of specialising over its one epoch (20 questions "
        "of its first held-out task at each scoring); off unless asked for, since it lengthens "
        "every scoring",
    "train.hparams.select_max_examples":
        CPU + "10 validation questions per dataset keep each selection pass short; 20 otherwise",
    "socratic.max_steps":
        CPU + "3 (sub-question, sub-answer) pairs per problem; 8 covers a multi-step GSM8K "
              "problem",
    "socratic.max_examples":
        CPU + "the loop makes 2 x max_steps generation passes per question; 20 otherwise",
    "socratic.max_tokens":
        CPU + "96 tokens per teacher decomposition; the default 256 holds a whole GSM8K "
              "decomposition",
    "socratic.max_questions":
        CPU + "left out, every train question is decomposed",
    "socratic.max_subquestion_tokens":
        CPU + "32 tokens per sub-question; 48 otherwise",
    "socratic.max_subanswer_tokens":
        CPU + "32 tokens per sub-answer; 64 leave room for a sub-answer's arithmetic",
    "socratic.hparams.max_steps":
        CPU + "4 optimizer steps per Socratic student; left out, training runs for "
              "socratic.hparams.epochs",
}


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a nested section (``HParams``, ``LoraParams | None``), if any."""
    parts = (typing.get_args(annotation)
             if typing.get_origin(annotation) in (typing.Union, types.UnionType) else [annotation])
    for part in parts:
        if isinstance(part, type) and issubclass(part, BaseModel):
            return part
    return None


def _walk(model: type[BaseModel], raw: dict, path: tuple[str, ...],
          leaves: list[tuple[str, ...]], unknown: list[str]) -> None:
    """Every leaf key of ``raw``: nested sections are recursed into; a mapping-valued key
    (``teacher.prices``, ``students``) or a null one is a leaf as a whole."""
    for key, value in raw.items():
        if key not in model.model_fields:
            unknown.append(".".join((*path, key)))
            continue
        nested = _section_model(model.model_fields[key].annotation)
        if nested is not None and isinstance(value, dict):
            _walk(nested, value, (*path, key), leaves, unknown)
        else:
            leaves.append((*path, key))


def _at(params: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        params = getattr(params, key)
    return params


def _without(raw: dict, path: tuple[str, ...]) -> dict:
    raw = copy.deepcopy(raw)
    parent = raw
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return raw


def _differences() -> dict[str, str]:
    """dotted key -> "params.yaml X, default Y" for every leaf whose two values differ."""
    raw = yaml.safe_load(PARAMS_YAML.read_text(encoding="utf-8"))
    given = load_params(PARAMS_YAML)
    leaves: list[tuple[str, ...]] = []
    _walk(Params, raw, (), leaves, [])
    differ = {}
    for path in leaves:
        key = ".".join(path)
        try:
            default = _at(Params.model_validate(_without(raw, path)), path)
        except ValidationError as exc:
            differ[key] = f"params.yaml without it does not validate: {exc}"
            continue
        if _at(given, path) != default:
            differ[key] = f"params.yaml {_at(given, path)!r}, default {default!r}"
    return differ


@pytest.fixture(scope="module")
def differences() -> dict[str, str]:
    return _differences()


def test_params_yaml_has_no_key_the_models_do_not_know():
    unknown: list[str] = []
    _walk(Params, yaml.safe_load(PARAMS_YAML.read_text(encoding="utf-8")), (), [], unknown)
    assert not unknown, f"params.yaml keys the params models do not know: {unknown}"


def test_every_difference_from_a_default_is_deliberate(differences):
    undeclared = {key: why for key, why in differences.items() if key not in DELIBERATE}
    assert not undeclared, (
        "params.yaml differs from the pydantic default: make the default equal, or add the key "
        "to DELIBERATE with the reason:\n"
        + "\n".join(f"  {key}: {why}" for key, why in undeclared.items()))


def test_every_deliberate_difference_still_differs(differences):
    stale = sorted(set(DELIBERATE) - set(differences))
    assert not stale, f"DELIBERATE entries that no longer differ (remove them): {stale}"


def test_every_deliberate_difference_says_why():
    assert all(isinstance(why, str) and why.strip() for why in DELIBERATE.values())


def test_the_walk_sees_nested_and_mapping_valued_keys():
    leaves: list[tuple[str, ...]] = []
    _walk(Params, yaml.safe_load(PARAMS_YAML.read_text(encoding="utf-8")), (), leaves, [])
    keys = {".".join(path) for path in leaves}
    assert {"train.hparams.max_steps", "socratic.hparams.max_length", "teacher.prices",
            "students", "train.hparams.lora"} <= keys


def test_a_difference_is_found_and_a_key_left_out_gets_its_default(tmp_path):
    # the mechanism itself: a partial nested mapping is judged by what its left-out keys become
    raw = {"socratic": {"hparams": {"max_steps": 4}}, "teacher": {"samples": 3}}
    assert _at(Params.model_validate(_without(raw, ("teacher", "samples"))),
               ("teacher", "samples")) == 2
    assert _at(Params.model_validate(raw), ("socratic", "hparams", "max_length")) == 256
