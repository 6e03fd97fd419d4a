"""Public raw files at a pinned revision, verified by checksum, or read from a local mirror.

A :class:`RemoteFile` names a file by repository, revision (a commit) and path, plus a
checksum of its bytes: ``sha256:<hex>``, or ``gitblob:<hex>`` (the blob id ``git ls-tree``
shows, for files whose bytes were not at hand when they were pinned). :class:`FileSource` finds it, in order: in the mirror directory
(``<mirror>/<owner>/<repo>/<path>``, the layout of ``../shared/data/mirror``), in the download
cache, or by downloading it from ``raw.githubusercontent.com``. Every file is checked against
its checksum wherever it came from, so a mirror that drifted from the pinned revision is caught.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cotdistill.atomic import atomic_file
from cotdistill.errors import CotdistillError

log = logging.getLogger(__name__)

MIRROR_ENV = "COTDISTILL_DATA_MIRROR"


@dataclass(frozen=True)
class RemoteFile:
    owner: str
    repo: str
    revision: str  # a commit id: the bytes behind it never change
    path: str
    checksum: str  # "sha256:<hex>" or "gitblob:<hex>"

    @property
    def url(self) -> str:
        return f"https://raw.githubusercontent.com/{self.owner}/{self.repo}/{self.revision}/{self.path}"

    @property
    def relative(self) -> Path:
        return Path(self.owner) / self.repo / self.path


def checksum(path: Path, kind: str) -> str:
    """``kind:<hex>`` of a file's bytes; ``gitblob`` hashes them the way git names a blob."""
    if kind == "sha256":
        digest = hashlib.sha256()
    elif kind == "gitblob":
        digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    else:
        raise ValueError(f"unknown checksum kind {kind!r}")
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"{kind}:{digest.hexdigest()}"


class FileSource:
    """Where published files come from: a mirror, the download cache, or the web."""

    def __init__(self, mirror: Path | str | None, cache: Path | str, *, download: bool = True):
        env = os.environ.get(MIRROR_ENV)
        chosen = mirror if mirror is not None else env
        self.mirror = Path(chosen).expanduser() if chosen else None
        self.cache = Path(cache)
        self.download = download

    def path(self, file: RemoteFile) -> Path:
        """A local, verified copy of ``file``; a clear error when it cannot be had."""
        if self.mirror is not None:
            candidate = self.mirror / file.relative
            if candidate.is_file():
                return self._verified(candidate, file)
        cached = self.cache / file.owner / file.repo / file.revision / file.path
        if cached.is_file():
            return self._verified(cached, file)
        where = f"mirror {self.mirror} (prepare.mirror or ${MIRROR_ENV})" if self.mirror else (
            f"no mirror set (prepare.mirror or ${MIRROR_ENV})")
        if not self.download:
            raise CotdistillError(f"{file.relative}: not found; looked in {where} and {cached}")
        log.info("downloading %s", file.url)
        try:
            with urllib.request.urlopen(file.url, timeout=60) as response, atomic_file(cached) as tmp:
                tmp.write_bytes(response.read())
                self._verified(tmp, file)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise CotdistillError(
                f"{file.relative}: not found; looked in {where} and {cached}, "
                f"and downloading {file.url} failed ({exc})"
            ) from None
        return cached

    @staticmethod
    def _verified(path: Path, file: RemoteFile) -> Path:
        actual = checksum(path, file.checksum.split(":", 1)[0])
        if actual != file.checksum:
            raise CotdistillError(
                f"{path}: checksum mismatch for {file.relative} at {file.revision[:12]} "
                f"(expected {file.checksum[:24]}..., got {actual[:24]}...)"
            )
        return path
