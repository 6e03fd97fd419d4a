"""The ``openai_batch`` teacher backend: the OpenAI Batch API, for large runs at half price.

One batch per call of the stage's two steps: the requests not yet in the cache are written as
JSON Lines, uploaded and submitted; the batch is polled (progress logged) until it ends; its
output and error files are collected into the cache in one go.

A batch is paid for once it is created, so the intent to create it is written to the cache DB
(``batch_intents``) before the request, and its id (``batches`` table, with the request set's
hash and its custom ids) the moment ``batches.create`` returns.
A run that was interrupted (Ctrl-C, SIGKILL, a poll that failed) finds the open batch there
and resumes polling it instead of submitting the same requests again. The request-set hash is
also sent as the batch's metadata, so even a crash in the instant between ``create`` and that
write is caught: before creating a batch the backend looks for a live one with the same
request set on the server. Prices get ``Price.batch_discount`` (the stage sees
``batch_priced``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from cotdistill.params import TeacherParams
from cotdistill.teachers.base import Admit, Failure, OnBatch, Outcome
from cotdistill.teachers.cache import ResponseCache
from cotdistill.teachers.openai import (
    backend_identity,
    classify,
    parse_response,
    read_api_key,
    request_bodies,
    resolve_base_url,
    scrub,
)

log = logging.getLogger(__name__)

TERMINAL = {"completed", "failed", "expired", "cancelled"}
DEAD = {"failed", "expired", "cancelled", "cancelling"}
METADATA_KEY = "cotdistill_request_set"
LIST_PAGE = 100  # batches per page of the listing (OpenAI allows 1 to 100)
_sleep = time.sleep  # tests replace it to interrupt a run while it polls


def custom_id(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def request_set_key(custom_ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(custom_ids)).encode()).hexdigest()


class OpenAIBatchBackend:
    """Submit, poll and collect Batch API jobs; see the module docstring."""

    name = "openai_batch"
    batch_priced = True
    asks_model = True

    def __init__(self, params: TeacherParams, cache_path: Path) -> None:
        self.params = params
        self.model = params.model
        self.base_url = resolve_base_url(params)
        self.identity = backend_identity(params, self.base_url)
        self.prompt_api = params.api
        self.endpoint = "/v1/chat/completions" if params.api == "chat" else "/v1/completions"
        self.scope = f"{self.base_url} {self.endpoint}"
        self.cache_path = cache_path
        self.created: list[str] = []  # batch ids this backend created (for logs and tests)

    @classmethod
    def from_params(cls, params: TeacherParams, cache_path: Path | None) -> OpenAIBatchBackend:
        """The Batch API backend keeps its jobs in the response cache's ``batches`` table."""
        if cache_path is None:
            raise ValueError("the openai_batch backend needs the cache path")
        return cls(params, cache_path)

    def complete(
        self, prompts: list[str], *, seeds: list[int], max_tokens: int, temperature: float,
        stop: list[str], on_batch: OnBatch, admit: Admit = lambda i: True,
    ) -> list[Outcome]:
        from openai import OpenAI

        secret = read_api_key(self.params)
        bodies = request_bodies(self.params, prompts, seeds, max_tokens=max_tokens,
                                temperature=temperature, stop=stop)
        ids = [custom_id(body) for body in bodies]
        index_of = {cid: i for i, cid in enumerate(ids)}
        outcomes: dict[int, Outcome] = {}
        # the control plane is a handful of calls: the client's own retries are enough here
        client = OpenAI(api_key=secret, base_url=self.base_url,
                        max_retries=self.params.max_retries, timeout=self.params.timeout_s)
        journal = ResponseCache(self.cache_path)
        try:
            for batch_id, _, batch_ids in journal.open_batches(self.scope):
                wanted = [c for c in batch_ids if c in index_of]
                if wanted:
                    log.info("resuming batch %s (%d of its %d requests are needed)", batch_id,
                             len(wanted), len(batch_ids))
                    self._finish(client, journal, batch_id, wanted, index_of, outcomes,
                                 on_batch, secret)
            rest = [i for i in range(len(bodies)) if i not in outcomes]
            refused = {i: Failure("budget") for i in rest if not admit(i)}
            if refused:
                outcomes.update(refused)
                on_batch(refused)
            chosen = [i for i in rest if i not in refused]
            if chosen:
                chosen_ids = [ids[i] for i in chosen]
                try:
                    batch_id = self._submit(client, journal, [bodies[i] for i in chosen],
                                            chosen_ids)
                except Exception as exc:  # noqa: BLE001 - nothing was bought: fail, do not raise
                    failure, _, _ = classify(exc, secret)
                    lost = {i: Failure(f"batch submit: {failure.error}", failure.message, 1)
                            for i in chosen}
                    outcomes.update(lost)
                    on_batch(lost)
                else:
                    self._finish(client, journal, batch_id, chosen_ids, index_of, outcomes,
                                 on_batch, secret)
        finally:
            journal.close()
            client.close()
        return [outcomes[i] for i in range(len(bodies))]

    def _submit(self, client, journal: ResponseCache, bodies: list[dict],
                ids: list[str]) -> str:
        """Create the batch (or find the live one for this request set); store its id at once."""
        set_key = request_set_key(ids)
        earlier = journal.intent(set_key)
        batch_id = self._find_live(client, journal, set_key)
        if batch_id is None:
            if earlier is not None:
                log.warning("a run at %s sent a create for this request set and never recorded "
                            "its batch; the server lists no live batch tagged with it (every "
                            "page read), so it is created now",
                            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(earlier["at"])))
            lines = "".join(
                json.dumps({"custom_id": cid, "method": "POST", "url": self.endpoint,
                            "body": body}) + "\n"
                for cid, body in zip(ids, bodies))
            upload = client.files.create(file=("requests.jsonl", lines.encode(),
                                               "application/jsonl"), purpose="batch")
            journal.add_intent(set_key, scope=self.scope, file_id=upload.id)
            batch_id = self._create(client, journal, upload.id, set_key)
            self.created.append(batch_id)
            log.info("created batch %s: %d requests", batch_id, len(ids))
        journal.add_batch(batch_id, scope=self.scope, request_set=set_key, custom_ids=ids)
        journal.clear_intent(set_key)
        return batch_id

    def _create(self, client, journal: ResponseCache, file_id: str, set_key: str) -> str:
        """Create the batch once. The SDK's own retries could create it twice (a connection
        cut after the server made it), so the create is sent once; on any failure the server's
        list is read again, and a batch tagged with this request set is the one just made."""
        try:
            return client.with_options(max_retries=0).batches.create(
                input_file_id=file_id, endpoint=self.endpoint,
                completion_window=self.params.batch_window,
                metadata={METADATA_KEY: set_key}).id
        except Exception:
            made = self._find_live(client, journal, set_key)
            if made is None:
                raise
            log.info("the create call failed, but the server made batch %s: kept", made)
            return made

    def _find_live(self, client, journal: ResponseCache, set_key: str) -> str | None:
        """A batch on the server for this request set, created but never recorded locally.

        Every page of the listing is read. A listing that fails raises: "none found" would
        lead to a new batch, bought a second time."""
        known = {row["batch_id"] for row in journal.batches()}
        try:
            for batch in client.batches.list(limit=LIST_PAGE):  # the SDK follows every page
                if (batch.id not in known and batch.status not in DEAD
                        and (batch.metadata or {}).get(METADATA_KEY) == set_key):
                    log.info("found batch %s on the server for this request set", batch.id)
                    return batch.id
        except Exception as exc:
            log.error("cannot list the server's batches (%s): no batch is created, so that "
                      "none is bought twice; run the stage again when the server answers",
                      str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise
        return None

    def _finish(self, client, journal: ResponseCache, batch_id: str, wanted: list[str],
                index_of: dict[str, int], outcomes: dict[int, Outcome], on_batch: OnBatch,
                secret: str) -> None:
        """Poll ``batch_id`` to its end and hand every wanted outcome to ``on_batch``.

        If polling or downloading fails the batch stays open in the journal (the next run
        resumes it) and its requests come back as failures of this run.
        """
        try:
            batch = self._poll(client, batch_id)
            got = self._collect(client, batch, set(wanted), secret)
        except Exception as exc:  # noqa: BLE001 - keep the batch; report, do not raise
            failure, _, _ = classify(exc, secret)
            got = {cid: Failure(f"batch poll: {failure.error}", failure.message, 1)
                   for cid in wanted}
            state = "open"
        else:
            state = batch.status
            for cid in wanted:
                got.setdefault(cid, Failure(f"batch {batch.status}", _batch_errors(batch), 1))
        done = {index_of[cid]: out for cid, out in got.items() if index_of[cid] not in outcomes}
        outcomes.update(done)
        on_batch(done)
        if state != "open":
            journal.close_batch(batch_id, state)

    def _poll(self, client, batch_id: str):
        last = None
        while True:
            batch = client.batches.retrieve(batch_id)
            counts = batch.request_counts
            progress = (batch.status, counts.completed if counts else 0,
                        counts.failed if counts else 0, counts.total if counts else 0)
            if progress != last:
                log.info("batch %s: %s, %d of %d done, %d failed", batch_id, progress[0],
                         progress[1], progress[3], progress[2])
                last = progress
            if batch.status in TERMINAL:
                return batch
            _sleep(self.params.batch_poll_s)

    def _collect(self, client, batch, wanted: set[str], secret: str) -> dict[str, Outcome]:
        got: dict[str, Outcome] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            for line in client.files.content(file_id).text.splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                cid = item.get("custom_id")
                if cid not in wanted or cid in got:
                    continue
                response = item.get("response") or {}
                status = response.get("status_code")
                if status == 200:
                    got[cid] = parse_response(self.params.api, response["body"])
                else:
                    error = ((response.get("body") or {}).get("error") or item.get("error")
                             or {})
                    got[cid] = Failure(f"{status} batch request",
                                       scrub(str(error.get("message", "")), secret)[:500], 1)
        return got


def _batch_errors(batch) -> str:
    errors = getattr(batch, "errors", None)
    data = getattr(errors, "data", None) or []
    messages = [getattr(e, "message", "") or "" for e in data]
    return "; ".join(m for m in messages if m)[:500] or f"no result in batch {batch.id}"
