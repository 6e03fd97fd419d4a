"""Outputs that appear whole or not at all.

DVC trusts that a stage's outs are complete whenever they exist. Every stage therefore writes
into a temporary sibling and renames it into place only after the work succeeded; a crash or a
bad input leaves the previous state (or nothing), never a half-written file.

A temporary's name carries the host and pid that made it (``.NAME.HOST-PID.XXXX.tmp``, HOST
being :func:`process_host`). A process killed with SIGKILL cannot tidy up, so the next one to
write beside the same target removes the temporaries of processes of this host that no longer
exist, and logs it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path


log = logging.getLogger(__name__)


@functools.cache
def process_host() -> str:
    """This host as its processes see it: the hostname, with the boot and the pid namespace
    when Linux tells them, so that two containers sharing a hostname and a volume never judge
    each other's process ids."""
    parts = []
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    with contextlib.suppress(OSError):
        parts.append(os.readlink("/proc/self/ns/pid"))
    if not parts:
        return socket.gethostname()
    return f"{socket.gethostname()}~{hashlib.sha1('|'.join(parts).encode()).hexdigest()[:8]}"


def _prefix(path: Path) -> str:
    return f".{path.name}.{process_host()}-{os.getpid()}."


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def sweep_leftovers(path: Path) -> list[Path]:
    """Remove the temporaries beside ``path`` that a process of this host, now gone, left (a
    SIGKILLed training leaves a 0.5 GB staging directory); return what was removed."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.{re.escape(process_host())}"
                         r"-(\d+)\..*\.tmp$")
    removed = []
    if not path.parent.is_dir():
        return removed
    for leftover in path.parent.iterdir():
        found = pattern.match(leftover.name)
        if found and not process_alive(int(found.group(1))):
            _remove(leftover)
            removed.append(leftover)
            log.warning("removed %s, left by process %s, which no longer runs", leftover,
                        found.group(1))
    return removed


def _temporary(path: Path, directory: bool) -> Path:
    """A fresh temporary beside ``path`` (after sweeping dead processes' leftovers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(path)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=_prefix(path), suffix=".tmp", dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=_prefix(path), suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    os.chmod(tmp, _default_mode(directory=directory))
    return tmp


def _default_mode(directory: bool) -> int:
    """The permissions an ordinary open()/mkdir() would give, not mkstemp's owner-only ones."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


@contextlib.contextmanager
def atomic_file(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` if the block succeeds."""
    path = Path(path)
    tmp_path = _temporary(path, directory=False)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: Path | str) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path``; it replaces ``path`` on success."""
    path = Path(path)
    tmp = _temporary(path, directory=True)
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


class Staging:
    """A stage's outputs, written beside their targets and moved into place together.

    DVC trusts that a stage's outs agree with each other. A stage with several outputs (a
    dataset and its report, predictions and metrics, a model and its curves) therefore writes
    them all here, does its last fallible step (MLflow logging) inside the block, and only
    then :meth:`commit` moves them all in: if moving one fails, the ones already moved are put
    back, so the previous outputs stay whole and consistent.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []  # (temporary, target)

    def file(self, path: Path | str) -> Path:
        """A temporary file to write ``path``'s new content to."""
        tmp = _temporary(Path(path), directory=False)
        self._staged.append((tmp, Path(path)))
        return tmp

    def dir(self, path: Path | str) -> Path:
        """An empty temporary directory that will replace the directory ``path``."""
        tmp = _temporary(Path(path), directory=True)
        self._staged.append((tmp, Path(path)))
        return tmp

    def commit(self) -> None:
        """Move every staged output onto its target, all or none."""
        backups: list[tuple[Path, Path]] = []  # (backup, target)
        placed: list[Path] = []
        try:
            for tmp, target in self._staged:
                if target.exists() or target.is_symlink():
                    backup = target.with_name(f".{target.name}.{os.getpid()}.previous")
                    _remove(backup)
                    os.replace(target, backup)
                    backups.append((backup, target))
                os.replace(tmp, target)
                placed.append(target)
        except BaseException:
            for target in placed:
                _remove(target)
            for backup, target in reversed(backups):
                os.replace(backup, target)
            raise
        for backup, _ in backups:
            _remove(backup)
        self._staged.clear()

    def discard(self) -> None:
        for tmp, _ in self._staged:
            _remove(tmp)
        self._staged.clear()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def publish() -> Iterator[Staging]:
    """Stage outputs in the block; move them all into place only if the whole block succeeds."""
    staging = Staging()
    try:
        yield staging
        staging.commit()
    finally:
        staging.discard()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) for the block: for
    read-compare-write steps that two processes on one machine may run at once. The kernel
    drops the lock when its holder dies, so a killed process never leaves it held."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
