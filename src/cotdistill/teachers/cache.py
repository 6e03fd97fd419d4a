"""A durable store of teacher responses, keyed by everything that determines them.

Each response is committed to SQLite (WAL mode, ``synchronous=FULL``) the moment it arrives, so
a crash loses nothing already generated or paid for, and a re-run with the same key asks the
model nothing. The key hashes backend, model, prompt, sampling params and sample index (and,
for API backends, base URL, API and log-probability settings).

Two more tables live in the same file because they must survive the same crashes:
- ``failures``: requests that failed for good on the last try (never served as hits; a later
  success deletes the row), so a failed run can say what failed and why;
- ``batches``: Batch API jobs, stored the moment they are created, so an interrupted run polls
  the batch it already paid for instead of submitting (and paying for) a second one.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any


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
"""


class ResponseCache:
    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._db.commit()

    # --- responses ------------------------------------------------------------------------

    def get(self, key: str) -> dict | None:
        row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_many(self, items: dict[str, dict]) -> None:
        """Store responses (one transaction, committed before returning); clears their failures."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO responses VALUES (?, ?)",
                [(key, json.dumps(value)) for key, value in items.items()],
            )
            self._db.executemany("DELETE FROM failures WHERE key = ?", [(k,) for k in items])

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    # --- failures -------------------------------------------------------------------------

    def put_failures(self, items: dict[str, dict]) -> None:
        """Record requests that failed for good: {key: {error, message, attempts}}."""
        now = time.time()
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)",
                [(key, f["error"], f["message"], f["attempts"], now) for key, f in items.items()],
            )

    def failures(self) -> dict[str, dict]:
        rows = self._db.execute("SELECT key, error, message, attempts FROM failures").fetchall()
        return {k: {"error": e, "message": m, "attempts": a} for k, e, m, a in rows}

    # --- Batch API jobs -------------------------------------------------------------------

    def add_batch(self, batch_id: str, *, scope: str, request_set: str,
                  custom_ids: list[str]) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, 'open', ?)",
                (batch_id, scope, request_set, json.dumps(custom_ids), time.time()),
            )

    def open_batches(self, scope: str) -> list[tuple[str, str, list[str]]]:
        """(batch id, request-set key, custom ids) of batches created but not yet collected."""
        rows = self._db.execute(
            "SELECT batch_id, request_set, custom_ids FROM batches "
            "WHERE scope = ? AND state = 'open' ORDER BY created", (scope,),
        ).fetchall()
        return [(b, s, json.loads(ids)) for b, s, ids in rows]

    def close_batch(self, batch_id: str, state: str) -> None:
        with self._db:
            self._db.execute("UPDATE batches SET state = ? WHERE batch_id = ?", (state, batch_id))

    def batches(self) -> list[dict]:
        rows = self._db.execute(
            "SELECT batch_id, scope, request_set, state FROM batches ORDER BY created").fetchall()
        return [dict(zip(("batch_id", "scope", "request_set", "state"), r)) for r in rows]

    def close(self) -> None:
        self._db.close()
