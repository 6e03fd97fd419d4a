"""The Batch API: uploaded files, batches, and the thread that answers each batch's lines.

Why a module of its own: it is the one stateful part of the protocol (files and batches are kept
in memory, lost when the server stops) and the one that runs in the background. A batch's lines
are parsed and formatted by the same :class:`~cotdistill.serve.protocol.Protocol` as direct
requests, so a line's answer is what the direct request would get; the engine runs them after
interactive requests (priority 1). Lines are tokenised and queued as the engine gets through
them (at most :data:`WINDOW_BATCHES` generate calls' rows ahead), so a large batch holds little
queued work and a cancel stops it quickly.

A batch goes ``validating`` (every line is checked: JSON, a unique ``custom_id``, the batch's
``url``; any problem fails the whole batch, as OpenAI does) → ``in_progress`` → ``finalizing`` →
``completed``, or ``cancelling`` → ``cancelled``. A line whose body the protocol refuses, or whose
generation fails, goes to the error file with its status code; the others to the output file.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from typing import Any

from cotdistill.serve.engine import Cancelled, Engine, Job, ShuttingDown
from cotdistill.serve.protocol import ENDPOINTS, ApiError, Prepared, Protocol

WINDOW_BATCHES = 4  # a batch keeps at most this many generate calls' rows queued at once


class BatchStore:
    """The files and batches of one server, and the counter of Batch API lines answered.

    ``lock`` guards the dictionaries and counters (the app shares it for its own counters).
    """

    def __init__(self, engine: Engine, protocol: Protocol, lock: threading.Lock) -> None:
        self.engine = engine
        self.protocol = protocol
        self.lock = lock
        self.batch_lines = 0
        self.files: dict[str, dict] = {}
        self.file_data: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.batch_jobs: dict[str, list[Job]] = {}

    # --- files

    def upload(self, body: bytes, content_type: str) -> dict:
        """``POST /v1/files``: a multipart body with a ``file`` and a ``purpose`` field."""
        fields = _parse_multipart(body, content_type)
        if "file" not in fields:
            raise ApiError(400, "a file field is required", param="file")
        filename, data = fields["file"]
        purpose = fields.get("purpose", (None, b""))[1].decode().strip()
        if not purpose:
            raise ApiError(400, "purpose is required", param="purpose")
        return self.add_file(data, filename or "upload", purpose)

    def add_file(self, data: bytes, filename: str, purpose: str) -> dict:
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        info = {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                "filename": filename, "purpose": purpose, "status": "processed",
                "expires_at": None, "status_details": None}
        with self.lock:
            self.files[file_id] = info
            self.file_data[file_id] = data
        return info

    def file(self, file_id: str) -> dict:
        info = self.files.get(file_id)
        if info is None:
            raise ApiError(404, f"No such File object: {file_id}", param="file_id",
                           code="file_not_found")
        return info

    def list_files(self) -> dict:
        return {"object": "list", "data": list(self.files.values()), "has_more": False}

    def file_content(self, file_id: str) -> bytes:
        self.file(file_id)
        return self.file_data[file_id]

    def delete_file(self, file_id: str) -> dict:
        self.file(file_id)
        with self.lock:
            self.files.pop(file_id, None)
            self.file_data.pop(file_id, None)
        return {"id": file_id, "object": "file", "deleted": True}

    # --- batches

    def create_batch(self, body: Any) -> dict:
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        endpoint = body.get("endpoint")
        if endpoint not in ENDPOINTS:
            raise ApiError(400, f"endpoint must be one of {', '.join(ENDPOINTS)}",
                           param="endpoint")
        input_file_id = body.get("input_file_id")
        self.file(input_file_id if isinstance(input_file_id, str) else "")
        if not isinstance(body.get("completion_window") or "", str):
            raise ApiError(400, "completion_window must be a string", param="completion_window")
        metadata = body.get("metadata")
        if metadata is not None and not (
                isinstance(metadata, dict) and len(metadata) <= 16 and all(
                    isinstance(v, str) and len(k) <= 64 and len(v) <= 512
                    for k, v in metadata.items())):
            raise ApiError(400, "metadata must be at most 16 string pairs (keys of at most 64 "
                           "characters, values of at most 512)", param="metadata")
        batch_id = f"batch_{uuid.uuid4().hex[:24]}"
        now = int(time.time())
        batch = {
            "id": batch_id, "object": "batch", "endpoint": endpoint, "errors": None,
            "input_file_id": input_file_id,
            "completion_window": body.get("completion_window") or "24h",
            "status": "validating", "output_file_id": None, "error_file_id": None,
            "created_at": now, "in_progress_at": None, "expires_at": now + 24 * 3600,
            "finalizing_at": None, "completed_at": None, "failed_at": None, "expired_at": None,
            "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"), "model": self.protocol.model_name,
        }
        with self.lock:
            self.batches[batch_id] = batch
        threading.Thread(target=self._run_batch, args=(batch_id,), daemon=True,
                         name=f"batch-{batch_id}").start()
        return dict(batch)

    def batch(self, batch_id: str) -> dict:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise ApiError(404, f"No such Batch object: {batch_id}", param="batch_id",
                           code="batch_not_found")
        with self.lock:
            return json.loads(json.dumps(batch))

    def list_batches(self, limit: int = 20, after: str | None = None) -> dict:
        """Newest first, ``limit`` at a time (1 to 100, OpenAI's default 20), from the batch
        after ``after``: a cursor page, as OpenAI's API pages."""
        if not 1 <= limit <= 100:
            raise ApiError(400, "limit must be between 1 and 100", param="limit",
                           code="invalid_value")
        with self.lock:
            order = list(reversed(list(self.batches)))
        start = 0
        if after is not None:
            if after not in order:
                raise ApiError(400, f"no batch {after!r} to list after", param="after",
                               code="invalid_value")
            start = order.index(after) + 1
        data = [self.batch(b) for b in order[start:start + limit]]
        return {"object": "list", "data": data, "has_more": start + limit < len(order),
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None}

    def cancel_batch(self, batch_id: str) -> dict:
        self.batch(batch_id)
        with self.lock:
            batch = self.batches[batch_id]
            if batch["status"] in ("validating", "in_progress", "finalizing"):
                batch["status"] = "cancelling"
                batch["cancelling_at"] = int(time.time())
                for job in self.batch_jobs.get(batch_id, []):
                    job.cancelled = True
        return self.batch(batch_id)

    def _update(self, batch_id: str, **changes) -> None:
        with self.lock:
            self.batches[batch_id].update(changes)

    def _run_batch(self, batch_id: str) -> None:
        """A batch's life: check its input file, answer each line, file the outputs."""
        batch = self.batches[batch_id]
        entries = self._start(batch_id)
        if entries is None:
            return
        outputs, errors = self._answer_all(batch_id, batch["endpoint"], entries)
        if batch["status"] != "cancelling":
            self._update(batch_id, status="finalizing", finalizing_at=int(time.time()))
        output_id = error_id = None
        if outputs:
            output_id = self.add_file(_jsonl(outputs), f"{batch_id}_output.jsonl",
                                      "batch_output")["id"]
        if errors:
            error_id = self.add_file(_jsonl(errors), f"{batch_id}_error.jsonl",
                                     "batch_output")["id"]
        now = int(time.time())
        with self.lock:
            self.batch_jobs.pop(batch_id, None)
            batch.update(output_file_id=output_id, error_file_id=error_id)
            if batch["status"] == "cancelling":
                batch.update(status="cancelled", cancelled_at=now)
            else:
                batch.update(status="completed", completed_at=now)

    def _start(self, batch_id: str) -> list[dict] | None:
        """The input file's requests, with the batch now in progress; None when the batch
        failed validation or was cancelled before it started."""
        batch = self.batches[batch_id]
        lines = self.file_data[batch["input_file_id"]].decode("utf-8", "replace").splitlines()
        problems, entries = _check_lines(lines, batch["endpoint"])
        if problems or not entries:
            problems = problems or [{"code": "empty_file", "line": None, "param": None,
                                     "message": "the input file holds no requests"}]
            self._update(batch_id, status="failed", failed_at=int(time.time()),
                         errors={"object": "list", "data": problems})
            return None
        with self.lock:
            if batch["status"] == "cancelling":
                batch.update(status="cancelled", cancelled_at=int(time.time()))
                return None
            batch.update(status="in_progress", in_progress_at=int(time.time()),
                         request_counts={"total": len(entries), "completed": 0, "failed": 0})
            self.batch_jobs[batch_id] = []  # what a cancel marks
        return entries

    def _answer_all(self, batch_id: str, endpoint: str, entries: list[dict]
                    ) -> tuple[list[dict], list[dict]]:
        """Submit the lines to the engine, at most WINDOW_BATCHES generate calls ahead, and
        collect the output and error lines; stops submitting on a cancel or shutdown."""
        batch, in_flight = self.batches[batch_id], self.batch_jobs[batch_id]
        outputs: list[dict] = []
        errors: list[dict] = []
        window: deque[tuple[dict, Prepared, Job]] = deque()
        queued = 0  # rows of this batch in the engine
        for entry in entries:
            try:
                item = self.protocol.prepare(endpoint, entry.get("body"))
            except ApiError as exc:
                errors.append(_line(entry, exc.status, exc.body()))
                self._count(batch_id, "failed")
                continue
            while window and queued + len(item.rows) > WINDOW_BATCHES * self.engine.max_batch:
                queued -= self._answer(batch_id, *window.popleft(), outputs, errors)
            with self.lock:
                if batch["status"] == "cancelling":
                    break
                try:
                    job = self.engine.submit(item.rows, item.max_tokens, priority=1)
                except ShuttingDown:
                    break
                in_flight.append(job)
            window.append((entry, item, job))
            queued += len(item.rows)
        while window:
            self._answer(batch_id, *window.popleft(), outputs, errors)
        return outputs, errors

    def _answer(self, batch_id: str, entry: dict, item: Prepared, job: Job,
                outputs: list[dict], errors: list[dict]) -> int:
        """Wait for one line's job and file its answer; return the job's row count."""
        try:
            body = self.protocol.format(item, job.future.result())
        except Cancelled:
            return len(job.rows)
        except Exception as exc:  # noqa: BLE001 - a failed generation fails its line only
            errors.append(_line(entry, 500, ApiError(500, str(exc), kind="server_error").body()))
            self._count(batch_id, "failed")
            return len(job.rows)
        finally:
            with self.lock:
                self.batch_jobs[batch_id].remove(job)
        with self.lock:
            self.batch_lines += 1
        outputs.append(_line(entry, 200, body))
        self._count(batch_id, "completed")
        return len(job.rows)

    def _count(self, batch_id: str, key: str) -> None:
        with self.lock:
            self.batches[batch_id]["request_counts"][key] += 1


def _line(entry: dict, status: int, body: dict) -> dict:
    """One line of a batch's output or error file."""
    return {"id": f"batch_req_{uuid.uuid4().hex[:24]}", "custom_id": entry["custom_id"],
            "response": {"status_code": status, "request_id": uuid.uuid4().hex, "body": body},
            "error": None}


def _check_lines(lines: list[str], endpoint: str) -> tuple[list[dict], list[dict]]:
    """``(problems, entries)`` of a batch input file's lines (blank lines skipped)."""
    problems, entries, seen = [], [], set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except RecursionError:
            problems.append({"code": "invalid_json_line", "line": number, "param": None,
                             "message": f"line {number} is nested too deeply to parse"})
            continue
        except ValueError as exc:
            problems.append({"code": "invalid_json_line", "line": number,
                             "message": f"line {number} is not JSON: {exc}", "param": None})
            continue
        custom_id = entry.get("custom_id") if isinstance(entry, dict) else None
        if not isinstance(custom_id, str):
            problems.append({"code": "missing_custom_id", "line": number, "param": None,
                             "message": f"line {number} has no custom_id"})
        elif custom_id in seen:
            problems.append({"code": "duplicate_custom_id", "line": number, "param": None,
                             "message": f"line {number}: duplicate custom_id {custom_id!r}"})
        elif entry.get("url") != endpoint:
            problems.append({"code": "mismatched_url", "line": number, "param": "url",
                             "message": f"line {number}: url {entry.get('url')!r} is not "
                                        f"the batch endpoint {endpoint}"})
        else:
            seen.add(custom_id)
            entries.append(entry)
    return problems, entries


def _jsonl(items: list[dict]) -> bytes:
    return "".join(json.dumps(item) + "\n" for item in items).encode()


def _parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """``{field: (filename, data)}`` from a multipart/form-data body (no extra dependency)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise ApiError(400, "expected a multipart/form-data body with a boundary")
    delimiter = b"--" + match.group(1).encode()
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        part = part.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, _, data = part.partition(b"\r\n\r\n")
        disposition = ""
        for header in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = header.partition(":")
            if name.strip().lower() == "content-disposition":
                disposition = value
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if name:
            fields[name.group(1)] = (filename.group(1) if filename else None, data)
    return fields
