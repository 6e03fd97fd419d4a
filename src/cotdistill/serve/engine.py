"""The engine: a local causal LM, its tokenizer, and the worker thread that batches generation.

Why a module of its own: it is the only part of the server that runs the model (torch,
``transformers``), and it knows nothing of HTTP or of the OpenAI protocol. It takes *rows*
(prompt token ids with their own sampling parameters) and gives back one :class:`RowResult` per
row; :mod:`cotdistill.serve.protocol` turns requests into rows and results into answers.

Batching and determinism
------------------------
Requests are turned into *rows* (one per prompt and choice: a request with 3 prompts and n=2 is
6 rows) and queued. One worker thread runs the model: it takes the oldest queued request, waits
up to ``batch_window_s`` for company, and runs up to ``max_batch`` rows that share
``max_tokens`` in one ``model.generate`` call (interactive requests go before Batch API lines).
Temperature, stop strings, seed and logprobs are per row, so requests with different sampling
parameters still share a call.

Decoding is :func:`cotdistill.lm.decoding.decode`, the one loop every local model runs through.
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

Logprobs are those of the model's distribution (before temperature), one entry per generated
token up to the finish (a final end-of-sequence token excluded; a stop string's tokens included).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from cotdistill.lm.decoding import DecodeRow, decode

log = logging.getLogger(__name__)



class Cancelled(Exception):
    """A job's future fails with this once it is cancelled (its client left, its batch ended)."""


class ShuttingDown(Exception):
    """The engine is stopping: no new jobs, and the pending ones fail with this."""


class QueueFull(Exception):
    """An interactive job would take the queued rows past ``max_queued_rows``."""

    def __init__(self, queued: int, limit: int, rows: int) -> None:
        super().__init__(f"the server's queue is full: {queued} rows are queued or running, "
                         f"this request adds {rows} and the limit is {limit}; retry later")


@dataclass
class RowResult:
    """What one row produced: the text (stop string cut), why it ended, its tokens' logprobs."""

    text: str
    finish_reason: str
    completion_tokens: int
    # per generated token (final EOS excluded): (token id, logprob, [(id, logprob)] top-k)
    logprobs: list[tuple[int, float, list[tuple[int, float]]]] | None


@dataclass
class Job:
    """The rows of one request (or Batch API line), queued together; ``future`` gets the results."""

    rows: list[DecodeRow]
    max_tokens: int
    priority: int  # 0 interactive, 1 Batch API
    seq: int
    future: Future = field(default_factory=Future)
    results: list = field(default_factory=list)
    taken: int = 0
    done: int = 0
    cancelled: bool = False
    settled: bool = False  # its future is set and its rows no longer count as queued

    def __post_init__(self) -> None:
        self.results = [None] * len(self.rows)


class Engine:
    """The model, its tokenizer, and the worker thread that batches rows into generate calls."""

    def __init__(self, model, tokenizer, *, max_batch: int, batch_window_s: float,
                 max_queued_rows: int | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_batch = max(1, max_batch)
        self.batch_window_s = max(0.0, batch_window_s)
        self.tok_lock = threading.RLock()  # fast tokenizers are not safe across threads
        self.context = getattr(model.config, "max_position_embeddings", None)
        self.vocab_size = model.get_input_embeddings().num_embeddings  # valid ids: below this
        self.max_queued_rows = max_queued_rows
        self.queued_rows = 0  # rows of interactive jobs not yet settled
        self.queued_batch_rows = 0  # rows of Batch API jobs not yet settled
        self._closing = False
        self._lock = threading.Lock()  # queued_rows and settling futures
        self.generate_calls = 0
        self.generated_rows = 0
        self._queue: queue.Queue[Job | None] = queue.Queue()
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

    def submit(self, rows: list[DecodeRow], max_tokens: int, priority: int = 0) -> Job:
        """Queue ``rows``; an interactive job (priority 0) raises :class:`QueueFull` past the limit.

        The future is marked running at once, so cancelling an asyncio wrapper of it cannot
        cancel it under the worker (which alone sets it, or :meth:`cancel`).
        """
        if self._closing:
            raise ShuttingDown("the server is stopping")
        job = Job(rows=rows, max_tokens=max_tokens, priority=priority, seq=next(self._seq))
        job.future.set_running_or_notify_cancel()
        if priority == 0:
            with self._lock:
                limit = self.max_queued_rows
                if limit is not None and self.queued_rows + len(rows) > limit:
                    raise QueueFull(self.queued_rows, limit, len(rows))
                self.queued_rows += len(rows)
        else:
            with self._lock:
                self.queued_batch_rows += len(rows)
        self._queue.put(job)
        return job

    def cancel(self, job: Job) -> None:
        """Drop ``job``: its queued rows are never run, its running rows stop at the next token."""
        job.cancelled = True
        self._settle(job, error=Cancelled())

    def stop(self) -> None:
        """Ask the worker to stop (returns at once): a running generate call ends at its next
        token, and every pending job fails with :class:`ShuttingDown`."""
        if not self._closing:
            self._closing = True
            self._queue.put(None)

    def close(self) -> None:
        """:meth:`stop`, then wait for the worker thread to end."""
        self.stop()
        self._thread.join(timeout=30)

    def _settle(self, job: Job, result: list | None = None,
                error: BaseException | None = None) -> None:
        with self._lock:
            if job.settled:
                return
            job.settled = True
            if job.priority == 0:
                self.queued_rows -= len(job.rows)
            else:
                self.queued_batch_rows -= len(job.rows)
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    def _work(self) -> None:
        """The worker thread: gather requests, run one batch, hand out its rows; repeat."""
        pending: list[Job] = []
        while True:
            if not self._gather(pending):
                return self._fail_all(pending)
            for job in [j for j in pending if j.cancelled]:
                pending.remove(job)
                self._settle(job, error=Cancelled())
            if not pending:
                continue
            batch, max_tokens = self._next_batch(pending)

            def unwanted(r: int, batch: list[tuple[Job, int]] = batch) -> bool:
                return self._closing or batch[r][0].cancelled

            try:
                outputs = self.run([job.rows[i] for job, i in batch], max_tokens, unwanted)
            except Exception as exc:  # a failed call fails its requests, not the server
                log.exception("generate failed")
                for job in {id(job): job for job, _ in batch}.values():
                    if job in pending:
                        pending.remove(job)
                    self._settle(job, error=exc)
                continue
            if self._closing:
                return self._fail_all(pending)
            self._deliver(batch, outputs, pending)

    def _gather(self, pending: list[Job]) -> bool:
        """Add queued jobs to ``pending``: when idle, wait for one, then up to
        ``batch_window_s`` for a full batch; then whatever else has arrived. False on
        shutdown."""
        if not pending:
            first = self._queue.get()
            if first is None:
                return False
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
                    return False
                pending.append(job)
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return True
            if job is None:
                return False
            pending.append(job)

    def _next_batch(self, pending: list[Job]) -> tuple[list[tuple[Job, int]], int]:
        """Up to ``max_batch`` rows, highest priority first, all with one ``max_tokens``."""
        pending.sort(key=lambda j: (j.priority, j.seq))
        max_tokens = pending[0].max_tokens
        batch: list[tuple[Job, int]] = []
        for job in pending:
            if job.max_tokens != max_tokens:
                continue
            while job.taken < len(job.rows) and len(batch) < self.max_batch:
                batch.append((job, job.taken))
                job.taken += 1
        return batch, max_tokens

    def _deliver(self, batch: list[tuple[Job, int]], outputs: list, pending: list[Job]) -> None:
        """Store each row's output; a job whose rows are all done is settled."""
        for (job, i), output in zip(batch, outputs):
            job.results[i] = output
            job.done += 1
            if job.done == len(job.rows) and job in pending:
                pending.remove(job)
                if job.cancelled:
                    self._settle(job, error=Cancelled())
                else:
                    self._settle(job, result=job.results)

    @staticmethod
    def _free_rows(pending: list[Job], max_tokens: int) -> int:
        return sum(len(j.rows) - j.taken for j in pending if j.max_tokens == max_tokens)

    def _fail_all(self, pending: list[Job]) -> None:
        """Fail every job still pending or queued: the server is stopping."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                pending.append(job)
        for job in pending:
            self._settle(job, error=ShuttingDown("the server is stopping"))

    # --- one generate call

    def run(self, rows: list[DecodeRow], max_tokens: int,
            unwanted: Callable[[int], bool] | None = None) -> list[RowResult]:
        """Generate for ``rows`` in one batch (:func:`cotdistill.lm.decoding.decode`); rows are
        independent of each other.

        ``unwanted(r)`` true: row r is no longer wanted (its client left); it stops at the next
        token, and the call ends as soon as no wanted row is left. Its result is then partial.
        """
        outputs = decode(self.model, self.tokenizer, rows, max_new_tokens=max_tokens,
                         unwanted=unwanted, decode_text=self.decode)
        self.generate_calls += 1
        self.generated_rows += len(rows)
        return [RowResult(
            text=out.text, completion_tokens=out.steps,
            finish_reason="length" if out.finish_reason == "length" else "stop",
            logprobs=None if out.logprobs is None else [
                (token, picked, top) for token, (picked, top) in zip(out.tokens, out.logprobs)],
        ) for out in outputs]
