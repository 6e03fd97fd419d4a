"""A durable store of teacher responses, keyed by everything that determines them.

Each response is committed to SQLite (WAL mode, ``synchronous=FULL``) the moment it arrives, so
a crash loses nothing already generated or paid for, and a re-run with the same key asks the
model nothing. The key hashes backend, model, prompt, sampling params and sample index (and,
for API backends, base URL, API and log-probability settings).

Two more tables live in the same file because they must survive the same crashes:
- ``failures``: requests that failed for good on the last try (never served as hits; a later
  success deletes the row), so a failed run can say what failed and why;
- ``batches``: Batch API jobs, stored the moment they are created, so an interrupted run polls
  the batch it already paid for instead of submitting (and paying for) a second one; and
  ``batch_intents``, a create about to be sent, written before the request;
- ``leases``: which process is asking for a key right now (:mod:`cotdistill.teachers.leases`),
  so that two runs sharing the cache (``dvc queue start -j 2``) never buy the same response.

A file that is not a readable cache, or one that cannot be written, is a
:class:`CacheFault`: one line naming the file and what to do, raised when the cache is
opened, before any model is asked anything. A damaged file is never rewritten or deleted.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from cotdistill.errors import CotdistillError


def response_key(**fields: Any) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS failures (
    key TEXT PRIMARY KEY, error TEXT NOT NULL, message TEXT NOT NULL, attempts INTEGER NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, scope TEXT NOT NULL, request_set TEXT NOT NULL,
    custom_ids TEXT NOT NULL, state TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_intents (
    request_set TEXT PRIMARY KEY, scope TEXT NOT NULL, file_id TEXT NOT NULL, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

T = TypeVar("T")

_LOCK_WAIT_S = 30.0  # how long any statement waits for another connection's lock


class CacheFault(CotdistillError):
    """The cache file cannot be read or written; nothing was asked of any model."""


def _locked(exc: sqlite3.Error) -> bool:
    """Another connection holds the lock (SQLITE_BUSY / SQLITE_LOCKED)."""
    return "locked" in str(exc) or "busy" in str(exc)


def describe_fault(path: Path, exc: sqlite3.Error) -> str:
    text = str(exc)
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return (f"{path}: the teacher cache cannot be written ({text}): make the file and its "
                "folder writable (chmod u+w; chattr -i where it was made immutable). Nothing "
                "was sent: every response must be stored the moment it arrives.")
    if _locked(exc):
        return (f"{path}: the teacher cache stayed locked by another process for "
                f"{_LOCK_WAIT_S:.0f} s ({text}); re-run when it has finished")
    return (f"{path}: not a readable teacher cache ({text}). The file is left as it is: move it "
            f"aside (mv {path} {path}.damaged) and re-run; responses recorded in "
            "data/teacher/completions.jsonl are restored from there, and "
            f"`sqlite3 {path}.damaged .recover | sqlite3 {path}` salvages the rest")


def _faults(method: Callable[..., T]) -> Callable[..., T]:
    """Turn SQLite's errors into a :class:`CacheFault` that names the file."""

    @functools.wraps(method)
    def guarded(self: ResponseCache, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise CacheFault(describe_fault(self.path, exc)) from None

    return guarded


class ResponseCache:
    """The cache at ``path``, opened and proven writable (a write is made and committed), so
    that a read-only or damaged file stops the run before its first call, not after it."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        """``read_only``: for looking only (``cotdistill estimate``); no write probe."""
        self.path = Path(path)
        if read_only:
            self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                       timeout=_LOCK_WAIT_S)
            try:
                self._db.execute("SELECT COUNT(*) FROM responses").fetchone()
            except sqlite3.Error as exc:
                self._db.close()
                raise CacheFault(describe_fault(self.path, exc)) from None
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheFault(f"{self.path.parent}: cannot create the teacher cache's folder "
                             f"({exc.strerror})") from None
        self._db = sqlite3.connect(self.path, timeout=_LOCK_WAIT_S)
        try:
            self._open()
        except sqlite3.Error as exc:
            self._db.close()
            raise CacheFault(describe_fault(self.path, exc)) from None

    def _open(self) -> None:
        self._enter_wal()
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        with self._db:  # the write probe
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('opened', ?)",
                             (str(time.time()),))

    def _enter_wal(self) -> None:
        """Switch the file to WAL, waiting out another connection that is doing the same.

        SQLite does not call the busy handler for this switch: when two runs open a new cache
        at the same moment, one gets "database is locked" at once, not after the timeout. So
        the switch is retried here, for as long as any other statement would wait.
        """
        deadline = time.monotonic() + _LOCK_WAIT_S
        while True:
            try:
                mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if not _locked(exc):
                    raise
                mode = None
            if mode == "wal":
                return
            if mode is not None:
                raise CacheFault(f"{self.path}: the teacher cache cannot use SQLite's WAL journal "
                                 f"(it stays '{mode}'); keep it on a local file system")
            if time.monotonic() >= deadline:
                raise sqlite3.OperationalError("database is locked")
            time.sleep(0.01)

    # --- responses ------------------------------------------------------------------------

    @_faults
    def get(self, key: str) -> dict | None:
        row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    @_faults
    def put_many(self, items: dict[str, dict]) -> None:
        """Store responses (one transaction, committed before returning); clears their failures."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO responses VALUES (?, ?)",
                [(key, json.dumps(value)) for key, value in items.items()],
            )
            self._db.executemany("DELETE FROM failures WHERE key = ?", [(k,) for k in items])
            self._db.executemany("DELETE FROM leases WHERE key = ?", [(k,) for k in items])

    @_faults
    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    # --- failures -------------------------------------------------------------------------

    @_faults
    def put_failures(self, items: dict[str, dict]) -> None:
        """Record requests that failed for good: {key: {error, message, attempts}}."""
        now = time.time()
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)",
                [(key, f["error"], f["message"], f["attempts"], now) for key, f in items.items()],
            )
            self._db.executemany("DELETE FROM leases WHERE key = ?", [(k,) for k in items])

    @_faults
    def failures(self) -> dict[str, dict]:
        rows = self._db.execute("SELECT key, error, message, attempts FROM failures").fetchall()
        return {k: {"error": e, "message": m, "attempts": a} for k, e, m, a in rows}

    # --- Batch API jobs -------------------------------------------------------------------

    @_faults
    def add_batch(self, batch_id: str, *, scope: str, request_set: str,
                  custom_ids: list[str]) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, 'open', ?)",
                (batch_id, scope, request_set, json.dumps(custom_ids), time.time()),
            )

    @_faults
    def add_intent(self, request_set: str, *, scope: str, file_id: str) -> None:
        """A batch for ``request_set`` is about to be created: written before the request, so
        a run that dies before it records the batch id knows a batch may exist."""
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO batch_intents VALUES (?, ?, ?, ?)",
                             (request_set, scope, file_id, time.time()))

    @_faults
    def intent(self, request_set: str) -> dict | None:
        row = self._db.execute("SELECT scope, file_id, at FROM batch_intents WHERE "
                               "request_set = ?", (request_set,)).fetchone()
        return dict(zip(("scope", "file_id", "at"), row)) if row else None

    @_faults
    def clear_intent(self, request_set: str) -> None:
        with self._db:
            self._db.execute("DELETE FROM batch_intents WHERE request_set = ?", (request_set,))

    @_faults
    def open_batches(self, scope: str) -> list[tuple[str, str, list[str]]]:
        """(batch id, request-set key, custom ids) of batches created but not yet collected."""
        rows = self._db.execute(
            "SELECT batch_id, request_set, custom_ids FROM batches "
            "WHERE scope = ? AND state = 'open' ORDER BY created", (scope,),
        ).fetchall()
        return [(b, s, json.loads(ids)) for b, s, ids in rows]

    @_faults
    def close_batch(self, batch_id: str, state: str) -> None:
        with self._db:
            self._db.execute("UPDATE batches SET state = ? WHERE batch_id = ?", (state, batch_id))

    @_faults
    def batches(self) -> list[dict]:
        rows = self._db.execute(
            "SELECT batch_id, scope, request_set, state FROM batches ORDER BY created").fetchall()
        return [dict(zip(("batch_id", "scope", "request_set", "state"), r)) for r in rows]

    # --- leases (cotdistill.teachers.leases) ----------------------------------------------

    @_faults
    def claim(self, keys: Iterable[str], owner: str, host: str, pid: int, ttl_s: float,
              *, taken_over: Callable[[str, int], bool]) -> tuple[list[str], list[str], dict]:
        """In one write transaction, sort ``keys`` into (claimed, answered, held).

        A key with a response is answered. A key leased by nobody, by ``owner``, or by a lease
        that ``taken_over(host, pid)`` says is dead (or that expired) is claimed by ``owner``
        until now + ``ttl_s``. Otherwise it is held: {key: (host, pid)} of the live owner.
        """
        now = time.time()
        claimed: list[str] = []
        answered: list[str] = []
        held: dict[str, tuple[str, int]] = {}
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for key in keys:
                if self._db.execute("SELECT 1 FROM responses WHERE key = ?",
                                    (key,)).fetchone():
                    answered.append(key)
                    continue
                row = self._db.execute("SELECT owner, host, pid, expires FROM leases "
                                       "WHERE key = ?", (key,)).fetchone()
                if row is not None and row[0] != owner and row[3] > now \
                        and not taken_over(row[1], row[2]):
                    held[key] = (row[1], row[2])
                    continue
                self._db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?)",
                                 (key, owner, host, pid, now + ttl_s))
                claimed.append(key)
        return claimed, answered, held

    @_faults
    def renew(self, owner: str, ttl_s: float) -> None:
        with self._db:
            self._db.execute("UPDATE leases SET expires = ? WHERE owner = ?",
                             (time.time() + ttl_s, owner))

    @_faults
    def release(self, owner: str) -> None:
        """Drop every lease ``owner`` holds (its responses are stored, or it gave up)."""
        with self._db:
            self._db.execute("DELETE FROM leases WHERE owner = ?", (owner,))

    @_faults
    def leases(self) -> list[dict]:
        rows = self._db.execute("SELECT key, owner, host, pid, expires FROM leases").fetchall()
        return [dict(zip(("key", "owner", "host", "pid", "expires"), r)) for r in rows]

    # --- restoring responses from the stage's own output ----------------------------------

    @_faults
    def restore(self, items: dict[str, dict]) -> int:
        """Add responses that are not in the cache yet (never replacing one); return how many
        were added."""
        with self._db:
            before = self._db.total_changes
            self._db.executemany("INSERT OR IGNORE INTO responses VALUES (?, ?)",
                                 [(key, json.dumps(value)) for key, value in items.items()])
            return self._db.total_changes - before

    def close(self) -> None:
        self._db.close()
