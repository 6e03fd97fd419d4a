"""An OpenAI-compatible HTTP server for a local ``transformers`` causal LM.

Why: the teacher stage talks to any OpenAI-compatible endpoint. To test that path for real
(HTTP, retries, the Batch API, the official ``openai`` client) without the internet, the project
serves its own local model over the OpenAI protocol on loopback. It is also a usable server for
small models on a laptop.

Run it::

    cotdistill serve --model builtin:SmolLM2-135M-Instruct --port 8000 --max-batch 8

then point any OpenAI client at ``http://127.0.0.1:8000/v1`` (any API key is accepted). The
``model`` field of requests must be the spec given to ``--model`` (``GET /v1/models`` lists it).
In tests use :func:`running_server`, which serves on a free loopback port in a background thread.

Endpoints: ``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions``, the Batch
API (``POST /v1/files``, ``GET /v1/files[/{id}[/content]]``, ``POST /v1/batches``,
``GET /v1/batches[/{id}]``, ``POST /v1/batches/{id}/cancel``) and ``GET /stats`` (also
``/v1/stats``): ``requests`` (HTTP requests to /v1/*), ``completions`` ({endpoint: direct
completion requests answered}), ``batch_lines`` (Batch API lines answered, not in
``completions``), ``batches``, ``generate_calls`` and ``generated_rows`` (model calls, rows).
No streaming, no ``echo``, ``top_p`` is ignored.

Batching and determinism
------------------------
Requests are turned into *rows* (one per prompt and choice: a request with 3 prompts and n=2 is
6 rows) and queued. One worker thread runs the model: it takes the oldest queued request, waits
up to ``batch_window_s`` for company, and runs up to ``max_batch`` rows that share
``max_tokens`` in one ``model.generate`` call (interactive requests go before Batch API lines).
Temperature, stop strings, seed and logprobs are per row, so requests with different sampling
parameters still share a call.

Each row samples with its own ``torch.Generator`` seeded from (request ``seed``, the row's choice
index j within its prompt, the prompt's token ids) and picks its token from its own logits
(greedy at temperature 0), so what a row produces does not depend on which other rows share its
batch, nor on what ran before. Request ``seed`` defaults to 0: a request without one is
deterministic too. Choice j of a prompt is the same whether the prompt is sent alone or in a
list, with n=j+1 or larger.
Caveat: a batch of different shape computes the same logits only up to float rounding (~1e-7);
a token could change only where two candidates tie to that precision (not seen in the tests, nor
with SmolLM2-135M: 8 sampled chats alone vs. together gave identical text).
``max_batch=1`` makes outputs bitwise independent of concurrency, at the cost of throughput.

Accounting: ``usage.prompt_tokens`` counts each prompt once (not once per choice),
``completion_tokens`` sums every choice's generated tokens, the end-of-sequence token included
(as :func:`cotdistill.lm.generation.generate` counts). ``finish_reason`` is "stop" (end of
sequence or a stop string; the stop string is cut from the text) or "length" (``max_tokens``).
Logprobs are those of the model's distribution (before temperature), one entry per generated
token up to the finish (a final end-of-sequence token excluded; a stop string's tokens included).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import queue
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)

MAX_TOP_LOGPROBS = 20
MAX_N = 128
ENDPOINTS = ("/v1/completions", "/v1/chat/completions")


# ----------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An OpenAI-style error answer: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = (
            status, message, param, code, kind)

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.code}}


class _Cancelled(Exception):
    pass


# ----------------------------------------------------------------------------- engine


@dataclass
class _Row:
    ids: list[int]
    temperature: float
    stop: tuple[str, ...]
    seed: int  # the row's own generator seed (already derived from request seed + choice)
    top_logprobs: int | None  # None: no logprobs wanted


@dataclass
class RowResult:
    text: str
    token_ids: list[int]
    finish_reason: str
    completion_tokens: int
    # per generated token (final EOS excluded): (token id, logprob, [(id, logprob)] top-k)
    logprobs: list[tuple[int, float, list[tuple[int, float]]]] | None


@dataclass
class _Job:
    rows: list[_Row]
    max_tokens: int
    priority: int  # 0 interactive, 1 Batch API
    seq: int
    future: Future = field(default_factory=Future)
    results: list = field(default_factory=list)
    taken: int = 0
    done: int = 0
    cancelled: bool = False

    def __post_init__(self) -> None:
        self.results = [None] * len(self.rows)


def row_seed(seed: int, choice: int, prompt_ids: list[int]) -> int:
    """The generator seed of choice ``choice`` for a prompt of a request with ``seed``.

    The prompt is part of it, so that different prompts of one seed do not share random numbers.
    """
    text = f"cotdistill-serve/{seed}/{choice}/{','.join(map(str, prompt_ids))}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


class _Engine:
    """The model, its tokenizer, and the worker thread that batches rows into generate calls."""

    def __init__(self, model, tokenizer, *, max_batch: int, batch_window_s: float) -> None:
        import torch

        self.torch = torch
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_batch = max(1, max_batch)
        self.batch_window_s = max(0.0, batch_window_s)
        self.tok_lock = threading.RLock()  # fast tokenizers are not safe across threads
        eos = set()
        for source in (getattr(model.generation_config, "eos_token_id", None),
                       tokenizer.eos_token_id):
            if isinstance(source, int):
                eos.add(source)
            elif source:
                eos.update(source)
        self.eos_ids = eos
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos)
        self.context = getattr(model.config, "max_position_embeddings", None)
        self.generate_calls = 0
        self.generated_rows = 0
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._seq = itertools.count()
        self._thread = threading.Thread(target=self._work, name="cotdistill-serve-worker",
                                        daemon=True)
        self._thread.start()

    # --- tokenizer helpers (all under the lock)

    def encode(self, text: str, *, special: bool = True) -> list[int]:
        with self.tok_lock:
            return list(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def decode(self, ids: list[int], *, skip_special: bool = True, exact: bool = False) -> str:
        with self.tok_lock:
            extra = {"clean_up_tokenization_spaces": False} if exact else {}
            return self.tokenizer.decode(ids, skip_special_tokens=skip_special, **extra)

    def token_text(self, token: int) -> str:
        """The token's own text, spaces untouched (what token-level KD aligns on)."""
        return self.decode([token], skip_special=False, exact=True)

    # --- queue

    def submit(self, rows: list[_Row], max_tokens: int, priority: int = 0) -> _Job:
        job = _Job(rows=rows, max_tokens=max_tokens, priority=priority, seq=next(self._seq))
        self._queue.put(job)
        return job

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _work(self) -> None:
        pending: list[_Job] = []
        while True:
            if not pending:
                first = self._queue.get()
                if first is None:
                    return
                pending.append(first)
                deadline = time.monotonic() + self.batch_window_s
                while self._free_rows(pending, first.max_tokens) < self.max_batch:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        job = self._queue.get(timeout=left)
                    except queue.Empty:
                        break
                    if job is None:
                        return self._fail_all(pending)
                    pending.append(job)
            while True:  # whatever else has arrived meanwhile
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    return self._fail_all(pending)
                pending.append(job)
            for job in [j for j in pending if j.cancelled]:
                pending.remove(job)
                if not job.future.done():
                    job.future.set_exception(_Cancelled())
            if not pending:
                continue
            pending.sort(key=lambda j: (j.priority, j.seq))
            max_tokens = pending[0].max_tokens
            batch: list[tuple[_Job, int]] = []
            for job in pending:
                if job.max_tokens != max_tokens:
                    continue
                while job.taken < len(job.rows) and len(batch) < self.max_batch:
                    batch.append((job, job.taken))
                    job.taken += 1
            try:
                outputs = self.run([job.rows[i] for job, i in batch], max_tokens)
            except Exception as exc:  # a failed call fails its requests, not the server
                log.exception("generate failed")
                for job in {id(job): job for job, _ in batch}.values():
                    if job in pending:
                        pending.remove(job)
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            for (job, i), output in zip(batch, outputs):
                job.results[i] = output
                job.done += 1
                if job.done == len(job.rows):
                    pending.remove(job)
                    if not job.future.done():
                        job.future.set_result(job.results)

    @staticmethod
    def _free_rows(pending: list[_Job], max_tokens: int) -> int:
        return sum(len(j.rows) - j.taken for j in pending if j.max_tokens == max_tokens)

    @staticmethod
    def _fail_all(pending: list[_Job]) -> None:
        for job in pending:
            if not job.future.done():
                job.future.set_exception(RuntimeError("server shutting down"))

    # --- one generate call

    def run(self, rows: list[_Row], max_tokens: int) -> list[RowResult]:
        """Generate for ``rows`` in one batch (left-padded); rows are independent of each other."""
        torch = self.torch
        from transformers import (LogitsProcessor, LogitsProcessorList, StoppingCriteria,
                                  StoppingCriteriaList)

        engine = self
        width = max(len(row.ids) for row in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            input_ids[r, width - len(row.ids):] = torch.tensor(row.ids, dtype=torch.long)
            attention[r, width - len(row.ids):] = 1
        generators = [torch.Generator().manual_seed(row.seed) for row in rows]
        want_top = max((row.top_logprobs or 0) for row in rows)
        want_logprobs = any(row.top_logprobs is not None for row in rows)
        steps: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]]
        steps = []  # per step: (chosen ids, chosen logprobs, top values, top ids)
        finish: list[tuple[int, str] | None] = [None] * len(rows)  # (tokens, reason)
        max_stop = max((len(s) for row in rows for s in row.stop), default=0)

        class Pick(LogitsProcessor):
            """Chooses each row's next token itself (per-row generator), then forces it."""

            def __call__(self, ids, scores):
                scores = scores.float()
                chosen = torch.empty(len(rows), dtype=torch.long)
                for r, row in enumerate(rows):
                    if row.temperature > 0:
                        probs = torch.softmax(scores[r] / row.temperature, dim=-1)
                        chosen[r] = torch.multinomial(probs, 1, generator=generators[r])[0]
                    else:
                        chosen[r] = scores[r].argmax()
                if want_logprobs:
                    logp = torch.log_softmax(scores, dim=-1)
                    picked = logp.gather(1, chosen[:, None])[:, 0]
                    top = logp.topk(min(MAX_TOP_LOGPROBS, logp.shape[1]), dim=-1) if want_top \
                        else None
                    steps.append((chosen, picked, top.values if top else None,
                                  top.indices if top else None))
                else:
                    steps.append((chosen, None, None, None))
                forced = torch.full_like(scores, float("-inf"))
                forced[torch.arange(len(rows)), chosen] = 0.0
                return forced

        class Finish(StoppingCriteria):
            """Per row: done at an end-of-sequence token or when a stop string appears."""

            def __call__(self, ids, scores, **kwargs):
                generated = ids.shape[1] - width
                for r, row in enumerate(rows):
                    if finish[r] is not None:
                        continue
                    if int(ids[r, -1]) in engine.eos_ids:
                        finish[r] = (generated, "eos")
                    elif row.stop:
                        window = ids[r, width:][-(max_stop + 16):].tolist()
                        tail = engine.decode(window)
                        if any(stop in tail for stop in row.stop):
                            finish[r] = (generated, "stop")
                return torch.tensor([f is not None for f in finish], dtype=torch.bool)

        with torch.inference_mode():
            self.model.generate(
                input_ids=input_ids, attention_mask=attention, max_new_tokens=max_tokens,
                do_sample=False, temperature=None, top_p=None, top_k=None,
                pad_token_id=self.pad_id, eos_token_id=sorted(self.eos_ids),
                logits_processor=LogitsProcessorList([Pick()]),
                stopping_criteria=StoppingCriteriaList([Finish()]),
            )
        self.generate_calls += 1
        self.generated_rows += len(rows)
        results = []
        for r, row in enumerate(rows):
            length, reason = finish[r] or (len(steps), "length")
            tokens = [int(steps[t][0][r]) for t in range(length)]
            visible = tokens[:-1] if reason == "eos" else tokens
            text = self.decode(visible)
            for stop in row.stop:
                position = text.find(stop)
                if position >= 0:
                    text = text[:position]
            logprobs = None
            if row.top_logprobs is not None:
                k = row.top_logprobs
                logprobs = []
                for t in range(len(visible)):
                    _, picked, values, indices = steps[t]
                    top = [] if k == 0 else list(zip(indices[r, :k].tolist(),
                                                     values[r, :k].tolist()))
                    logprobs.append((visible[t], float(picked[r]), top))
            results.append(RowResult(
                text=text, token_ids=visible, completion_tokens=length, logprobs=logprobs,
                finish_reason="length" if reason == "length" else "stop",
            ))
        return results


# ----------------------------------------------------------------------------- requests


def _int(body: dict, name: str, default: int | None, *, low: int, high: int | None = None):
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{name} must be an integer", param=name)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ApiError(400, f"{name} must be {bound}, got {value}", param=name)
    return value


def _temperature(body: dict) -> float:
    value = body.get("temperature")
    if value is None:
        return 1.0  # the OpenAI default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 2:
        raise ApiError(400, "temperature must be a number between 0 and 2", param="temperature")
    return float(value)


def _stop(body: dict) -> tuple[str, ...]:
    value = body.get("stop")
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ApiError(400, "stop must be a string or a list of strings", param="stop")
    return tuple(s for s in value if s)


def _content(content: Any, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            else:
                raise ApiError(400, "only text content parts are supported",
                               param=f"messages[{index}].content")
        return "".join(parts)
    raise ApiError(400, "message content must be a string or a list of parts",
                   param=f"messages[{index}].content")


@dataclass
class _Prepared:
    endpoint: str
    prompts: list[list[int]]
    n: int
    max_tokens: int
    rows: list[_Row]


class _Service:
    """Request parsing, formatting, counters, files and batches; the engine does the rest."""

    def __init__(self, engine: _Engine, model_name: str) -> None:
        self.engine = engine
        self.model_name = model_name
        self.created = int(time.time())
        self.lock = threading.Lock()
        self.requests = 0
        self.completions: Counter[str] = Counter()
        self.batch_lines = 0
        self.files: dict[str, dict] = {}
        self.file_data: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.batch_jobs: dict[str, list[_Job]] = {}

    # --- parsing

    def _check_model(self, body: dict) -> None:
        model = body.get("model")
        if model is not None and model != self.model_name:
            raise ApiError(404, f"The model {model!r} does not exist; this server serves "
                           f"{self.model_name!r}", param="model", code="model_not_found")

    def _chat_prompt(self, messages: Any) -> list[int]:
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "messages must be a non-empty list", param="messages")
        plain = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise ApiError(400, "each message needs a role", param=f"messages[{i}]")
            plain.append({"role": message["role"],
                          "content": _content(message.get("content"), i)})
        tokenizer = self.engine.tokenizer
        if getattr(tokenizer, "chat_template", None):
            with self.engine.tok_lock:
                text = tokenizer.apply_chat_template(plain, tokenize=False,
                                                     add_generation_prompt=True)
            return self.engine.encode(text, special=False)
        lines = [f"{m['role']}: {m['content']}" for m in plain]
        return self.engine.encode("\n".join([*lines, "assistant:"]))

    def _completion_prompts(self, prompt: Any) -> list[list[int]]:
        if isinstance(prompt, str):
            return [self.engine.encode(prompt)]
        if isinstance(prompt, list) and prompt:
            if all(isinstance(p, str) for p in prompt):
                return [self.engine.encode(p) for p in prompt]
            if all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
                return [list(prompt)]
            if all(isinstance(p, list) and p and all(isinstance(t, int) for t in p)
                   for p in prompt):
                return [list(p) for p in prompt]
        raise ApiError(400, "prompt must be a string, a list of strings, or token ids",
                       param="prompt")

    def prepare(self, endpoint: str, body: Any) -> _Prepared:
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        self._check_model(body)
        if body.get("stream"):
            raise ApiError(400, "streaming is not supported by this server", param="stream")
        chat = endpoint == "/v1/chat/completions"
        if chat:
            prompts = [self._chat_prompt(body.get("messages"))]
            max_tokens = _int(body, "max_completion_tokens", None, low=1)
            if max_tokens is None:
                max_tokens = _int(body, "max_tokens", None, low=1)
            if body.get("logprobs"):
                top = _int(body, "top_logprobs", 0, low=0, high=MAX_TOP_LOGPROBS)
            else:
                if body.get("top_logprobs") is not None:
                    raise ApiError(400, "top_logprobs needs logprobs: true",
                                   param="top_logprobs")
                top = None
        else:
            if body.get("echo"):
                raise ApiError(400, "echo is not supported by this server", param="echo")
            if "prompt" not in body:
                raise ApiError(400, "prompt is required", param="prompt")
            prompts = self._completion_prompts(body["prompt"])
            max_tokens = _int(body, "max_tokens", 16, low=1)
            top = _int(body, "logprobs", None, low=0, high=MAX_TOP_LOGPROBS)
        n = _int(body, "n", 1, low=1, high=MAX_N)
        seed = _int(body, "seed", 0, low=-(2**63))
        temperature = _temperature(body)
        stop = _stop(body)
        longest = max(len(p) for p in prompts)
        if any(not p for p in prompts):
            raise ApiError(400, "the prompt is empty", param="prompt")
        context = self.engine.context
        if max_tokens is None:  # chat without a limit: what the context leaves
            max_tokens = max(1, (context or longest + 256) - longest)
        if context is not None and longest + max_tokens > context:
            raise ApiError(400, f"This model's maximum context length is {context} tokens; "
                           f"the prompt has {longest} and max_tokens is {max_tokens}",
                           param="max_tokens", code="context_length_exceeded")
        rows = [_Row(ids=p, temperature=temperature, stop=stop, seed=row_seed(seed, j, p),
                     top_logprobs=top) for p in prompts for j in range(n)]
        return _Prepared(endpoint, prompts, n, max_tokens, rows)

    # --- formatting

    def _usage(self, prepared: _Prepared, results: list[RowResult]) -> dict:
        prompt = sum(len(p) for p in prepared.prompts)
        completion = sum(r.completion_tokens for r in results)
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}

    def _token(self, token: int) -> str:
        return self.engine.token_text(token)

    def format(self, prepared: _Prepared, results: list[RowResult]) -> dict:
        created = int(time.time())
        if prepared.endpoint == "/v1/chat/completions":
            choices = []
            for i, result in enumerate(results):
                logprobs = None
                if result.logprobs is not None:
                    logprobs = {"content": [
                        {"token": (text := self._token(token)),
                         "bytes": list(text.encode()), "logprob": lp,
                         "top_logprobs": [
                             {"token": (alt := self._token(a)), "bytes": list(alt.encode()),
                              "logprob": alp} for a, alp in top]}
                        for token, lp, top in result.logprobs], "refusal": None}
                choices.append({"index": i, "message": {"role": "assistant",
                                                        "content": result.text,
                                                        "refusal": None},
                                "logprobs": logprobs, "finish_reason": result.finish_reason})
            return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
                    "created": created, "model": self.model_name, "choices": choices,
                    "usage": self._usage(prepared, results), "system_fingerprint": None}
        choices = []
        for i, result in enumerate(results):
            logprobs = None
            if result.logprobs is not None:
                tokens, offsets, tops, position = [], [], [], 0
                for token, _, top in result.logprobs:
                    text = self._token(token)
                    tokens.append(text)
                    offsets.append(position)
                    position += len(text)
                    entry: dict[str, float] = {}
                    for alt, lp in top:  # two ids may print alike: the likelier one stays
                        entry.setdefault(self._token(alt), lp)
                    tops.append(entry)
                logprobs = {"tokens": tokens,
                            "token_logprobs": [lp for _, lp, _ in result.logprobs],
                            "top_logprobs": tops, "text_offset": offsets}
            choices.append({"index": i, "text": result.text, "logprobs": logprobs,
                            "finish_reason": result.finish_reason})
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
                "created": created, "model": self.model_name, "choices": choices,
                "usage": self._usage(prepared, results)}

    # --- files and batches

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

    def create_batch(self, body: Any) -> dict:
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        endpoint = body.get("endpoint")
        if endpoint not in ENDPOINTS:
            raise ApiError(400, f"endpoint must be one of {', '.join(ENDPOINTS)}",
                           param="endpoint")
        input_file_id = body.get("input_file_id")
        self.file(input_file_id if isinstance(input_file_id, str) else "")
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
            "metadata": body.get("metadata"), "model": self.model_name,
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
        batch = self.batches[batch_id]
        endpoint = batch["endpoint"]
        lines = self.file_data[batch["input_file_id"]].decode("utf-8", "replace").splitlines()
        problems, entries, seen = [], [], set()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
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
        now = int(time.time())
        if problems or not entries:
            problems = problems or [{"code": "empty_file", "line": None, "param": None,
                                     "message": "the input file holds no requests"}]
            self._update(batch_id, status="failed", failed_at=now,
                         errors={"object": "list", "data": problems})
            return
        prepared: list[_Prepared | ApiError] = []
        jobs: list[_Job | None] = []
        for entry in entries:
            try:
                item = self.prepare(endpoint, entry.get("body"))
            except ApiError as exc:
                item = exc
            prepared.append(item)
        with self.lock:
            if batch["status"] == "cancelling":
                batch.update(status="cancelled", cancelled_at=int(time.time()))
                return
            batch.update(status="in_progress", in_progress_at=int(time.time()),
                         request_counts={"total": len(entries), "completed": 0, "failed": 0})
            for item in prepared:
                jobs.append(None if isinstance(item, ApiError) else
                            self.engine.submit(item.rows, item.max_tokens, priority=1))
            self.batch_jobs[batch_id] = [job for job in jobs if job is not None]
        outputs, errors = [], []
        for entry, item, job in zip(entries, prepared, jobs):
            line = {"id": f"batch_req_{uuid.uuid4().hex[:24]}", "custom_id": entry["custom_id"]}
            if job is None:
                line.update(response={"status_code": item.status, "request_id": uuid.uuid4().hex,
                                      "body": item.body()}, error=None)
                errors.append(line)
                self._count(batch_id, "failed")
                continue
            try:
                body = self.format(item, job.future.result())
                with self.lock:
                    self.batch_lines += 1
            except _Cancelled:
                continue
            except Exception as exc:
                line.update(response={"status_code": 500, "request_id": uuid.uuid4().hex,
                                      "body": ApiError(500, str(exc), kind="server_error").body()},
                            error=None)
                errors.append(line)
                self._count(batch_id, "failed")
                continue
            line.update(response={"status_code": 200, "request_id": uuid.uuid4().hex,
                                  "body": body}, error=None)
            outputs.append(line)
            self._count(batch_id, "completed")
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

    def _count(self, batch_id: str, key: str) -> None:
        with self.lock:
            self.batches[batch_id]["request_counts"][key] += 1

    def stats(self) -> dict:
        with self.lock:
            return {"requests": self.requests, "completions": dict(self.completions),
                    "batch_lines": self.batch_lines, "batches": len(self.batches),
                    "generate_calls": self.engine.generate_calls,
                    "generated_rows": self.engine.generated_rows}


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


# ----------------------------------------------------------------------------- app


def create_app(model_spec: str, *, max_batch: int = 8, batch_window_s: float = 0.01) -> FastAPI:
    """A FastAPI app serving ``model_spec`` (a model spec as ``load_causal_lm`` takes it).

    The model is loaded here, before the app exists; its name in the API is ``model_spec``.
    ``app.state.service`` holds the state (``.engine.generate_calls`` counts model calls).
    """
    from cotdistill.lm.store import load_causal_lm

    model, tokenizer = load_causal_lm(model_spec, "serve --model", for_generation=True)
    engine = _Engine(model, tokenizer, max_batch=max_batch, batch_window_s=batch_window_s)
    service = _Service(engine, model_spec)

    @asynccontextmanager
    async def lifespan(app):
        yield
        await asyncio.to_thread(engine.close)

    app = FastAPI(title="cotdistill OpenAI-compatible server", lifespan=lifespan)
    app.state.service = service

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse(ApiError(exc.status_code, str(exc.detail)).body(),
                            status_code=exc.status_code)

    @app.middleware("http")
    async def count(request: Request, call_next):
        if request.url.path.startswith("/v1/"):
            with service.lock:
                service.requests += 1
        return await call_next(request)

    async def json_body(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"the request body is not valid JSON: {exc}") from None

    async def complete(endpoint: str, request: Request) -> dict:
        prepared = service.prepare(endpoint, await json_body(request))
        job = engine.submit(prepared.rows, prepared.max_tokens)
        try:
            results = await asyncio.wrap_future(job.future)
        except Exception as exc:
            raise ApiError(500, f"generation failed: {exc}", kind="server_error") from None
        with service.lock:
            service.completions[endpoint] += 1
        return service.format(prepared, results)

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [
            {"id": service.model_name, "object": "model", "created": service.created,
             "owned_by": "cotdistill"}]}

    @app.get("/v1/models/{model_id:path}")
    async def model_info(model_id: str) -> dict:
        service._check_model({"model": model_id})
        return {"id": service.model_name, "object": "model", "created": service.created,
                "owned_by": "cotdistill"}

    @app.post("/v1/completions")
    async def completions(request: Request) -> dict:
        return await complete("/v1/completions", request)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> dict:
        return await complete("/v1/chat/completions", request)

    @app.post("/v1/files")
    async def upload(request: Request) -> dict:
        fields = _parse_multipart(await request.body(), request.headers.get("content-type", ""))
        if "file" not in fields:
            raise ApiError(400, "a file field is required", param="file")
        filename, data = fields["file"]
        purpose = fields.get("purpose", (None, b""))[1].decode().strip()
        if not purpose:
            raise ApiError(400, "purpose is required", param="purpose")
        return service.add_file(data, filename or "upload", purpose)

    @app.get("/v1/files")
    async def list_files() -> dict:
        return {"object": "list", "data": list(service.files.values()), "has_more": False}

    @app.get("/v1/files/{file_id}")
    async def file_info(file_id: str) -> dict:
        return service.file(file_id)

    @app.get("/v1/files/{file_id}/content")
    async def file_content(file_id: str) -> Response:
        service.file(file_id)
        return Response(service.file_data[file_id], media_type="application/octet-stream")

    @app.delete("/v1/files/{file_id}")
    async def delete_file(file_id: str) -> dict:
        service.file(file_id)
        with service.lock:
            service.files.pop(file_id, None)
            service.file_data.pop(file_id, None)
        return {"id": file_id, "object": "file", "deleted": True}

    @app.post("/v1/batches")
    async def create_batch(request: Request) -> dict:
        return service.create_batch(await json_body(request))

    @app.get("/v1/batches")
    async def list_batches() -> dict:
        data = [service.batch(b) for b in reversed(list(service.batches))]
        return {"object": "list", "data": data, "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None}

    @app.get("/v1/batches/{batch_id}")
    async def get_batch(batch_id: str) -> dict:
        return service.batch(batch_id)

    @app.post("/v1/batches/{batch_id}/cancel")
    async def cancel_batch(batch_id: str) -> dict:
        return service.cancel_batch(batch_id)

    @app.get("/stats")
    @app.get("/v1/stats")
    async def stats() -> dict:
        return service.stats()

    return app


@contextmanager
def running_server(model_spec: str, *, host: str = "127.0.0.1", port: int = 0,
                   **app_kwargs) -> Iterator[str]:
    """Serve ``model_spec`` with uvicorn in a background thread; yield ``http://HOST:PORT/v1``.

    ``port=0`` picks a free port. ``app_kwargs`` go to :func:`create_app`. On exit the server
    shuts down (open connections get 2 s) and the worker thread stops.
    """
    import urllib.request

    import uvicorn

    app = create_app(model_spec, **app_kwargs)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"uvicorn-{port}")
    thread.start()
    base_url = f"http://{host}:{port}/v1"
    try:
        deadline = time.monotonic() + 30
        while True:
            if not thread.is_alive():
                raise RuntimeError("the server thread ended while starting")
            if server.started:
                try:
                    with urllib.request.urlopen(f"{base_url}/models", timeout=2) as answer:
                        if answer.status == 200:
                            break
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server on port {port} did not answer within 30 s")
            time.sleep(0.02)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
