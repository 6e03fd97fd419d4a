"""A durable store of teacher responses, keyed by everything that determines them.

Each response is committed to SQLite (WAL mode) the moment its batch finishes, so a crash
loses nothing already generated or paid for, and a re-run with the same key asks the model
nothing. The key hashes backend, model, prompt, sampling params and sample index.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any


def response_key(**fields: Any) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


class ResponseCache:
    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT)")
        self._db.commit()

    def get(self, key: str) -> dict | None:
        row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_many(self, items: dict[str, dict]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO responses VALUES (?, ?)",
                [(key, json.dumps(value)) for key, value in items.items()],
            )

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()
