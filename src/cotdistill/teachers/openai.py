"""The ``openai`` teacher backend: any OpenAI-compatible endpoint, asked concurrently.

Works with OpenAI, vLLM, llama.cpp's server, Ollama, or ``cotdistill.serve``: ``teacher.api``
picks ``/v1/chat/completions`` (the prompt is the user message) or ``/v1/completions``. The
key is read from the environment variable ``teacher.api_key_env`` and nowhere else; it is
never logged and is scrubbed from every failure message.

Requests run as asyncio tasks, at most ``teacher.concurrency`` in flight, under
``teacher.rpm`` / ``teacher.tpm`` (aiolimiter; requests are paced a second's share at a time,
tokens per minute, counted as OpenAI's own estimate: prompt characters / 4 + ``max_tokens``). Retries are ours, not the ``openai`` client's (it is built
with ``max_retries=0``), because its policy does not fit a run of thousands of requests: it
waits exactly ``Retry-After`` with no jitter (every request throttled at once retries at the
same instant), gives up at once on a ``Retry-After`` above two minutes, its jitter only
shortens a wait by up to 25 %, and its retries would bypass the rate limiters. Here 408, 409,
429, 5xx, timeouts and dropped connections are retried ``teacher.max_retries`` times with
exponential backoff (``retry_base_s`` doubling up to ``retry_max_s``, "equal jitter": half
fixed, half random); a ``Retry-After`` (or ``retry-after-ms``) is a floor, plus up to 20 %
jitter, and pauses every worker, not just the throttled one. Other 4xx fail at once, and
after a 401, 403 or 404 (a bad key, no access, no such model) no further request is sent.

A request that still fails is returned as a :class:`~cotdistill.teachers.base.Failure` (the stage
records it and retries it next run); every outcome goes to ``on_batch`` the moment it exists.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import random
import time
import weakref
from pathlib import Path
from typing import Any

from cotdistill.errors import CotdistillError
from cotdistill.params import TeacherParams
from cotdistill.teachers.base import Admit, Completion, Failure, OnBatch, Outcome

log = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "sk-no-key-needed"  # sent to a base_url when no key is set (local servers)
RETRY_STATUS = {408, 409, 429}  # and every 5xx
FATAL_STATUS = {401, 403, 404}  # a bad key or model: no later request can succeed


def resolve_base_url(params: TeacherParams) -> str:
    return (params.base_url or OPENAI_BASE_URL).rstrip("/")


def read_api_key(params: TeacherParams) -> str:
    """The key from ``teacher.api_key_env``; a placeholder for a custom base_url without one."""
    key = os.environ.get(params.api_key_env, "")
    if key:
        return key
    if params.base_url:
        return PLACEHOLDER_KEY
    raise CotdistillError(
        f"teacher.api_key_env: the environment variable {params.api_key_env} is not set "
        "(the API key is read from the environment only)"
    )


def scrub(text: str, secret: str) -> str:
    """``text`` with the secret (and any long prefix of it an error might echo) masked."""
    if secret and secret != PLACEHOLDER_KEY:
        text = text.replace(secret, "***")
        if len(secret) > 12:
            text = text.replace(secret[:12], "***")
    return text


def request_body(params: TeacherParams, prompt: str, *, seed: int, max_tokens: int,
                 temperature: float, stop: list[str]) -> dict[str, Any]:
    """The JSON body of one request (shared by the online and the Batch API backends)."""
    body: dict[str, Any] = {"model": params.model, "max_tokens": max_tokens,
                            "temperature": temperature, "seed": seed}
    if stop:
        body["stop"] = stop
    if params.api == "chat":
        body["messages"] = [{"role": "user", "content": prompt}]
        if params.top_logprobs:
            body.update(logprobs=True, top_logprobs=params.top_logprobs)
    else:
        body["prompt"] = prompt
        if params.top_logprobs:
            body["logprobs"] = params.top_logprobs
    return body


def request_bodies(params: TeacherParams, prompts: list[str], seeds: list[int], *,
                   max_tokens: int, temperature: float, stop: list[str]) -> list[dict[str, Any]]:
    """One body per prompt, prompt i sampled with ``seeds[i]``."""
    return [request_body(params, prompt, seed=seed, max_tokens=max_tokens,
                         temperature=temperature, stop=stop)
            for prompt, seed in zip(prompts, seeds)]


def backend_identity(params: TeacherParams, base_url: str) -> dict[str, Any]:
    """What, besides model and request, determines a response: part of the cache key (the same
    for the online and the Batch API backends, so each can serve what the other bought)."""
    return {"base_url": base_url, "api": params.api, "top_logprobs": params.top_logprobs}


def parse_response(api: str, body: dict[str, Any]) -> Completion:
    """A completion from a response body (a dict: the online response or a batch output line)."""
    choice = body["choices"][0]
    usage = body.get("usage") or {}
    logprobs = choice.get("logprobs") or {}
    top: list[dict[str, float]] | None = None
    tokens: list[str] | None = None
    if api == "chat":
        text = (choice.get("message") or {}).get("content") or ""
        if logprobs.get("content"):
            top = [{t["token"]: t["logprob"] for t in item.get("top_logprobs") or []}
                   or {item["token"]: item["logprob"]} for item in logprobs["content"]]
            tokens = [item["token"] for item in logprobs["content"]]
    else:
        text = choice.get("text") or ""
        if logprobs.get("top_logprobs"):
            top = [dict(entry or {}) for entry in logprobs["top_logprobs"]]
            tokens = list(logprobs.get("tokens") or []) or None
    return Completion(text=text, prompt_tokens=int(usage.get("prompt_tokens") or 0),
                      completion_tokens=int(usage.get("completion_tokens") or 0),
                      top_logprobs=top, tokens=tokens)


def retry_after_s(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        return max(0.0, email.utils.mktime_tz(parsed) - time.time()) if parsed else None


def backoff_s(attempt: int, base: float, cap: float, retry_after: float | None) -> float:
    """Exponential backoff with equal jitter; never sooner than ``Retry-After`` (+0-20 %)."""
    ceiling = min(cap, base * 2 ** min(attempt, 30))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, retry_after * (1 + random.uniform(0, 0.2)))
    return delay


def classify(exc: Exception, secret: str) -> tuple[Failure, bool, float | None]:
    """(failure, worth retrying, Retry-After seconds) for an exception from one attempt."""
    import openai

    message = scrub(str(exc), secret)[:500]
    if isinstance(exc, openai.APITimeoutError):
        return Failure("timeout", message), True, None
    if isinstance(exc, openai.APIConnectionError):
        return Failure("connection", message), True, None
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retry = status in RETRY_STATUS or status >= 500
        failure = Failure(f"{status} {type(exc).__name__}", message)
        return failure, retry, retry_after_s(exc.response.headers) if retry else None
    return Failure(f"bad response ({type(exc).__name__})", message), False, None


def _close_runner(runner: asyncio.Runner) -> None:
    """Close a collected backend's event loop. The garbage collector may collect it while
    another loop runs in this thread (the next backend's), where ``Runner.close`` cannot run
    its loop to shut it down and fails, leaving the loop open; then the loop is closed as it
    is, which loses nothing: every call has awaited all its requests and closed its client."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        runner.close()
        return
    runner.get_loop().close()


class OpenAIBackend:
    """Concurrent requests to an OpenAI-compatible endpoint; see the module docstring."""

    name = "openai"
    batch_priced = False
    asks_model = True

    def __init__(self, params: TeacherParams) -> None:
        self.params = params
        self.model = params.model
        self.base_url = resolve_base_url(params)
        self.identity = backend_identity(params, self.base_url)
        self.prompt_api = params.api
        self.attempts = 0  # requests sent, retries included (for logs and tests)
        # one event loop for the backend's life, so the rate limiters and a Retry-After pause
        # carry over from one call (one step of the stage) to the next
        self._runner: asyncio.Runner | None = None
        self._limits: tuple[Any, Any] | None = None
        self._resume_at = 0.0  # monotonic time before which no request is sent (Retry-After)

    @classmethod
    def from_params(cls, params: TeacherParams, cache_path: Path | None) -> OpenAIBackend:
        return cls(params)

    def complete(
        self, prompts: list[str], *, seeds: list[int], max_tokens: int, temperature: float,
        stop: list[str], on_batch: OnBatch, admit: Admit = lambda i: True,
    ) -> list[Outcome]:
        secret = read_api_key(self.params)
        bodies = request_bodies(self.params, prompts, seeds, max_tokens=max_tokens,
                                temperature=temperature, stop=stop)
        tokens = [len(p) // 4 + 1 + max_tokens for p in prompts]  # OpenAI's own TPM estimate
        if self._runner is None:
            self._runner = asyncio.Runner()
            weakref.finalize(self, _close_runner, self._runner)
        return self._runner.run(self._run(bodies, tokens, secret, on_batch, admit))

    def _limiters(self) -> tuple[Any, Any]:
        from aiolimiter import AsyncLimiter

        if self._limits is None:
            p = self.params
            # OpenAI enforces a per-minute limit in shorter slices (600 RPM: 10 in any second),
            # so requests are paced a second's share at a time, not a minute's burst
            share = max(1.0, p.rpm / 60) if p.rpm else 0.0
            self._limits = (AsyncLimiter(share, share * 60 / p.rpm) if p.rpm else None,
                            AsyncLimiter(p.tpm, 60) if p.tpm else None)
        return self._limits

    async def _pace(self, rpm: AsyncLimiter | None, tpm: AsyncLimiter | None,
                    tokens: int) -> None:
        """Wait until a request may go: after any server-asked pause (with jitter, so that
        workers do not return at once), then within the request and token rates."""
        wait = self._resume_at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait + random.uniform(0, 0.2 * wait))
        if rpm:
            await rpm.acquire()
        if tpm:
            await tpm.acquire(min(tokens, self.params.tpm))

    async def _run(self, bodies: list[dict], tokens: list[int], secret: str,
                   on_batch: OnBatch, admit: Admit) -> list[Outcome]:
        from openai import AsyncOpenAI
        from tqdm import tqdm

        p = self.params
        sent_before = self.attempts  # the backend lives on across calls; log this call's own
        rpm, tpm = self._limiters()
        fatal: list[Failure] = []  # the first 401/403/404: the rest are not sent
        results: dict[int, Outcome] = {}
        pending = iter(range(len(bodies)))
        client = AsyncOpenAI(api_key=secret, base_url=self.base_url, max_retries=0,
                             timeout=p.timeout_s)
        send = client.chat.completions.create if p.api == "chat" else client.completions.create

        async def one(i: int) -> Outcome:
            if fatal:
                return Failure(fatal[0].error, f"not sent after: {fatal[0].message}", 0)
            if not admit(i):
                return Failure("budget")
            for attempt in range(p.max_retries + 1):
                await self._pace(rpm, tpm, tokens[i])
                self.attempts += 1
                try:
                    response = await send(**bodies[i])
                    return parse_response(p.api, response.model_dump())
                except Exception as exc:  # noqa: BLE001 - every failure becomes a Failure
                    failure, retry, after = classify(exc, secret)
                    if not retry or attempt == p.max_retries:
                        if failure.error.split()[0] in {str(s) for s in FATAL_STATUS}:
                            fatal.append(failure)
                            log.error("%s: %s; sending no more requests", failure.error,
                                      failure.message)
                        return Failure(failure.error, failure.message, attempt + 1)
                    if after is not None:
                        self._resume_at = max(self._resume_at, time.monotonic() + after)
                    delay = backoff_s(attempt, p.retry_base_s, p.retry_max_s, after)
                    log.info("request %d: %s; retry %d/%d in %.2fs", i, failure.error,
                             attempt + 1, p.max_retries, delay)
                    await asyncio.sleep(delay)
            raise AssertionError("unreachable")

        with tqdm(total=len(bodies), desc=f"teacher ({p.api})", unit="req", leave=False) as bar:

            async def worker() -> None:
                for i in pending:  # a shared iterator: each index is taken by one worker
                    results[i] = out = await one(i)
                    on_batch({i: out})
                    bar.update(1)

            try:
                await asyncio.gather(*(worker() for _ in range(min(p.concurrency, len(bodies)))))
            finally:
                await client.close()
        failed = sum(isinstance(out, Failure) for out in results.values())
        log.info("%s: %d request(s), %d attempt(s) in total, %d failed", self.base_url,
                 len(bodies), self.attempts - sent_before, failed)
        return [results[i] for i in range(len(bodies))]
