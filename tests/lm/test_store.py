"""Where a model comes from: a path, a builtin that installs from the registry, or a hub id;
one that cannot be had is one error naming the params key, before any work starts."""

from __future__ import annotations

import pytest

from cotdistill.errors import CotdistillError
from cotdistill.lm.store import check_model, resolve


def test_a_model_directory_resolves_to_itself(tiny_model):
    assert resolve(str(tiny_model), "students.tiny.model") == str(tiny_model)
    assert check_model(str(tiny_model), "students.tiny.model") == str(tiny_model)


@pytest.mark.parametrize("spec, message", [
    ("./models/nowhere", "students.x.model: model path not found: ./models/nowhere"),
    ("builtin:no-such-model", "students.x.model: unknown builtin model 'no-such-model'"),
])
def test_a_model_that_is_not_there_is_named_by_its_key(spec, message):
    with pytest.raises(CotdistillError) as info:
        resolve(spec, "students.x.model")
    assert str(info.value).startswith(message)


def test_a_file_is_not_a_model_directory(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(CotdistillError, match="is a file, not a model directory"):
        resolve(str(tmp_path / "weights.bin"), "teacher.model")


def test_a_hub_id_offline_and_not_cached_fails_before_any_work(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert resolve("someone/some-model", "teacher.model") == "someone/some-model"
    with pytest.raises(CotdistillError, match=r"^teacher\.model: cannot load model "
                       r"'someone/some-model' \(not a local model directory"):
        check_model("someone/some-model", "teacher.model")


def test_a_truncated_weights_file_is_one_line_naming_the_key(tiny_model, tmp_path):
    import shutil

    from cotdistill.lm.store import load_causal_lm

    damaged = tmp_path / "student"
    shutil.copytree(tiny_model, damaged)
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CotdistillError, match=r"^students.tiny.model: cannot load model .*"
                                              r"(incomplete|deserializ)") as caught:
        load_causal_lm(str(damaged), "students.tiny.model")
    assert "\n" not in str(caught.value)
