"""The OpenAI-compatible teacher backends against a real server on loopback (cotdistill.serve).

No mocked client: the official ``openai`` package talks HTTP to the project's server over the
tiny model, through a fault-injecting proxy where a test needs faults. The server's /stats
count what was really generated, so "a re-run makes zero requests" and "nothing paid twice"
are measured, not assumed.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.request

import pytest
from support.fault_proxy import FaultProxy
from typer.testing import CliRunner

from cotdistill.params import TeacherParams
from cotdistill.records import PreparedExample
from cotdistill.serve import running_server
from cotdistill.teachers.cache import ResponseCache
from cotdistill.teachers.engine import TeacherIncomplete
from cotdistill.teachers.estimate import estimate
from cotdistill.teachers.openai_batch import OpenAIBatchBackend
from cotdistill.teachers.registry import make_backend
from cotdistill.teachers.zero_shot_cot import run_teacher

EXAMPLES = [
    PreparedExample(id=f"coin_flip-{i:05d}", dataset="coin_flip", split="train",
                    question=f"A coin is heads up. Person{i} flips the coin. Is the coin still "
                             "heads up?", answer="no", answer_type="yes_no")
    for i in range(3)
]
UNIQUE = len(EXAMPLES) * 2 * 2  # questions x samples x (rationale + answer)
PRICE = {"prompt": 1000.0, "completion": 3000.0}  # $ per 1M tokens: cents per request


@pytest.fixture(scope="module")
def server(tiny_model):
    with running_server(str(tiny_model), max_batch=8, batch_window_s=0.01) as url:
        yield url


def served(url: str) -> int:
    """Completions the server generated so far (interactive and Batch API)."""
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=10) as answer:
        stats = json.load(answer)
    return sum(stats["completions"].values()) + stats["batch_lines"]


def batches_created(url: str) -> int:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=10) as answer:
        return json.load(answer)["batches"]


def settings(url: str, model, **overrides) -> TeacherParams:
    base = dict(backend="openai", base_url=url, model=str(model), api="completions", samples=2,
                temperature=0.8, max_rationale_tokens=8, max_answer_tokens=4, concurrency=4,
                timeout_s=20, retry_base_s=0.05, retry_max_s=0.4)
    return TeacherParams(**{**base, **overrides})


def run(params: TeacherParams, cache):
    return run_teacher(EXAMPLES, params, make_backend(params, cache), cache)


def texts(records) -> list[tuple]:
    return [(r.id, r.sample, r.rationale, r.answer_text) for r in records]


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_both_apis_produce_records_and_a_rerun_asks_nothing(server, tiny_model, tmp_path, api):
    params = settings(server, tiny_model, api=api)
    before = served(server)
    records, stats = run(params, tmp_path / "cache.sqlite")
    assert served(server) - before == UNIQUE == stats.generated
    assert [(r.id, r.sample) for r in records] == [(e.id, s) for e in EXAMPLES for s in (0, 1)]
    for record in records:
        assert record.backend == "openai" and record.model == str(tiny_model)
        assert record.usage.prompt_tokens > 0 and record.usage.completion_tokens > 0
        assert record.top_logprobs is None
    again, stats = run(params, tmp_path / "cache.sqlite")
    assert served(server) - before == UNIQUE, "the re-run sent a request"
    assert stats.generated == 0 and stats.cached == UNIQUE and again == records


def test_faults_are_retried_with_nothing_lost_and_nothing_paid_twice(server, tiny_model,
                                                                      tmp_path, caplog):
    clean, _ = run(settings(server, tiny_model), tmp_path / "clean.sqlite")
    # the stall outlasts the client's timeout; the timeout is far above a normal answer (<1 s)
    with FaultProxy(server, stall_s=8.0) as proxy:
        proxy.schedule("429", "500", "stall", "cut", "cut_before")
        params = settings(proxy.base_url, tiny_model, timeout_s=4.0)
        before = served(server)
        with caplog.at_level(logging.INFO, logger="cotdistill.teachers.openai"):
            records, stats = run(params, tmp_path / "cache.sqlite")
        faults = [fault for fault, _, _ in proxy.applied if fault != "pass"]
        assert faults == ["429", "500", "stall", "cut", "cut_before"]
        # on a loaded machine an answer may outlast the timeout too: a fault like the stall
        late = caplog.text.count(": timeout; retry") - 1
        assert proxy.received == UNIQUE + 5 + late
        # reaching the server: every unique request once, the "cut" one (answered, then cut
        # on its way back) and any answer the client stopped waiting for
        assert proxy.forwarded == UNIQUE + 1 + late
        assert _settles(lambda: served(server) - before, proxy.forwarded)
    assert stats.generated == UNIQUE and not stats.failures
    assert texts(records) == texts(clean), "a faulted request was lost or changed"
    waits = [float(w) for w in re.findall(r"429 RateLimitError; retry 1/\d+ in ([\d.]+)s",
                                          caplog.text)]
    assert waits and all(1.0 <= w <= 1.2 for w in waits), "Retry-After: 1 not honoured"


def _settles(measure, expected, seconds: float = 20.0) -> bool:
    """True once ``measure()`` equals ``expected`` (the server may still be finishing)."""
    deadline = time.monotonic() + seconds
    while measure() != expected:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _cli_dir(tmp_path, teacher: dict):
    import yaml

    (tmp_path / "data/prepared").mkdir(parents=True)
    (tmp_path / "data/prepared/train.jsonl").write_text(
        "".join(e.model_dump_json() + "\n" for e in EXAMPLES))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"teacher": teacher}))
    return tmp_path


def test_a_request_that_keeps_failing_is_recorded_and_only_it_is_asked_again(
        server, tiny_model, tmp_path, monkeypatch):
    from cotdistill.cli import app

    monkeypatch.setenv("TEST_TEACHER_KEY", "sk-planted-secret-0123456789abcdef")
    with FaultProxy(server) as proxy:  # one proxy (one base URL, so the same cache keys)
        teacher = settings(proxy.base_url, tiny_model, concurrency=1, max_retries=2,
                           api_key_env="TEST_TEACHER_KEY").model_dump(exclude_defaults=True)
        monkeypatch.chdir(_cli_dir(tmp_path, teacher))
        # concurrency 1: the 6 rationales pass, then the first answer fails all 3 attempts
        proxy.schedule(*["pass"] * 6, "500", "500", "500")
        result = CliRunner().invoke(app, ["teacher"])
        assert result.exit_code == 1
        assert "1 request(s) failed" in result.output
        assert "500 InternalServerError" in result.output
        assert "sk-planted" not in result.output
        assert not (tmp_path / "data/teacher/completions.jsonl").exists()
        cache = ResponseCache(tmp_path / ".cotdistill/teacher-cache.sqlite")
        try:
            assert len(cache) == UNIQUE - 1
            assert [f["attempts"] for f in cache.failures().values()] == [3]
        finally:
            cache.close()

        forwarded = proxy.forwarded
        result = CliRunner().invoke(app, ["teacher"])  # faults off
        assert result.exit_code == 0, result.output
        assert proxy.forwarded - forwarded == 1, "the re-run asked for more than the failure"
    assert len((tmp_path / "data/teacher/completions.jsonl").read_text().splitlines()) == 6
    cache = ResponseCache(tmp_path / ".cotdistill/teacher-cache.sqlite")
    try:
        assert len(cache) == UNIQUE and not cache.failures()
    finally:
        cache.close()


def test_top_logprobs_are_stored_with_each_completion(server, tiny_model, tmp_path):
    for api in ("completions", "chat"):
        records, _ = run(settings(server, tiny_model, api=api, top_logprobs=3),
                         tmp_path / f"{api}.sqlite")
        for record in records:
            assert record.top_logprobs and len(record.top_logprobs) <= 8
            for entry in record.top_logprobs:
                assert 1 <= len(entry) <= 3 and all(lp <= 0 for lp in entry.values())


def test_max_usd_stops_before_the_cap_and_keeps_what_was_bought(server, tiny_model, tmp_path):
    model = str(tiny_model)
    free = settings(server, model, prices={model: PRICE})
    full = estimate(EXAMPLES, free, make_backend(free), tmp_path / "cache.sqlite").total.usd
    cap = full / 2
    params = settings(server, model, prices={model: PRICE}, max_usd=cap)
    before = served(server)
    with pytest.raises(TeacherIncomplete, match=r"teacher.max_usd \$") as caught:
        run(params, tmp_path / "cache.sqlite")
    stats = caught.value.stats
    assert 0 < stats.usd <= cap and stats.not_sent > 0
    bought = served(server) - before
    assert bought == stats.generated
    cache = ResponseCache(tmp_path / "cache.sqlite")
    try:
        assert len(cache) == bought and not cache.failures()  # refused requests are not failures
    finally:
        cache.close()
    records, again = run(settings(server, model, prices={model: PRICE}, max_usd=full * 2),
                         tmp_path / "cache.sqlite")
    assert served(server) - before == UNIQUE and again.cached == bought
    assert sum(r.usage.usd for r in records) == pytest.approx(stats.usd + again.usd)


def test_estimate_equals_what_the_run_spends(server, tiny_model, tmp_path):
    model = str(tiny_model)
    params = settings(server, model, prices={model: PRICE})
    cache = tmp_path / "cache.sqlite"
    before = estimate(EXAMPLES, params, make_backend(params), cache)
    records, stats = run(params, cache)
    hit_max = all(r.usage.completion_tokens == 8 + 4 for r in records)
    assert hit_max, "the test needs completions that run to max_tokens"
    rationale, answer = before.steps
    spent = stats.steps
    assert rationale.calls == spent["rationale"]["calls"] == 6
    assert rationale.prompt_tokens == spent["rationale"]["prompt_tokens"]
    assert rationale.completion_tokens == spent["rationale"]["completion_tokens"]
    assert rationale.usd == pytest.approx(spent["rationale"]["usd"])
    assert answer.calls == spent["answer"]["calls"]
    assert answer.completion_tokens == spent["answer"]["completion_tokens"]
    # the answer prompt holds the rationale, unknown before: estimated at max_rationale_tokens
    assert answer.prompt_tokens == pytest.approx(spent["answer"]["prompt_tokens"], rel=0.1)
    after = estimate(EXAMPLES, params, make_backend(params), cache)
    assert after.total.calls == 0 and after.total.usd == 0 and after.total.cached == UNIQUE


def test_batch_mode_completes_at_the_batch_price(server, tiny_model, tmp_path):
    model = str(tiny_model)
    online, paid = run(settings(server, model, prices={model: PRICE}), tmp_path / "online.sqlite")
    params = settings(server, model, backend="openai_batch", batch_poll_s=0.05,
                      prices={model: PRICE})
    created, before = batches_created(server), served(server)
    records, stats = run(params, tmp_path / "batch.sqlite")
    assert batches_created(server) - created == 2  # one batch per step
    assert served(server) - before == UNIQUE
    assert texts(records) == texts(online) and records[0].backend == "openai_batch"
    assert stats.usd == pytest.approx(paid.usd * 0.5)  # Price.batch_discount
    again, stats = run(params, tmp_path / "batch.sqlite")
    assert batches_created(server) - created == 2 and stats.generated == 0 and again == records


def test_an_interrupted_batch_run_resumes_the_same_batch(server, tiny_model, tmp_path,
                                                        monkeypatch):
    # a seed of its own: a batch for the same requests made by another test would be found
    params = settings(server, tiny_model, backend="openai_batch", batch_poll_s=0.05, seed=11)
    cache = tmp_path / "cache.sqlite"
    created, before = batches_created(server), served(server)
    poll = OpenAIBatchBackend._poll

    def killed(self, client, batch_id):  # the process dies while it waits for the batch
        raise KeyboardInterrupt

    monkeypatch.setattr(OpenAIBatchBackend, "_poll", killed)
    with pytest.raises(KeyboardInterrupt):
        run(params, cache)
    journal = ResponseCache(cache)
    try:
        [first] = journal.batches()
        assert first["state"] == "open" and len(journal) == 0
    finally:
        journal.close()
    monkeypatch.setattr(OpenAIBatchBackend, "_poll", poll)
    records, stats = run(params, cache)
    assert batches_created(server) - created == 2, "the rationale batch was submitted twice"
    assert served(server) - before == UNIQUE and stats.generated == UNIQUE
    journal = ResponseCache(cache)
    try:
        rows = journal.batches()
        assert rows[0]["batch_id"] == first["batch_id"]
        assert [row["state"] for row in rows] == ["completed", "completed"]
    finally:
        journal.close()


def die_after_batch_create(params: TeacherParams, cache, monkeypatch) -> None:
    """Run until the server has made the first batch, then die before its id is recorded."""
    record = ResponseCache.add_batch

    def killed(self, batch_id, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ResponseCache, "add_batch", killed)
    with pytest.raises(KeyboardInterrupt):
        run(params, cache)
    monkeypatch.setattr(ResponseCache, "add_batch", record)


def test_a_batch_created_but_never_recorded_is_found_on_the_server(server, tiny_model,
                                                                    tmp_path, monkeypatch):
    params = settings(server, tiny_model, backend="openai_batch", batch_poll_s=0.05, seed=12)
    created = batches_created(server)
    die_after_batch_create(params, tmp_path / "cache.sqlite", monkeypatch)
    assert batches_created(server) - created == 1
    journal = ResponseCache(tmp_path / "cache.sqlite")
    [intent] = journal._db.execute("SELECT request_set FROM batch_intents").fetchall()
    assert journal.batches() == [], "the intent was written before the create, the id never"
    journal.close()
    run(params, tmp_path / "cache.sqlite")
    assert batches_created(server) - created == 2, "the unrecorded batch was paid for twice"
    journal = ResponseCache(tmp_path / "cache.sqlite")
    assert journal.intent(intent[0]) is None  # the batch was found and recorded
    assert intent[0] in {row["request_set"] for row in journal.batches()}
    journal.close()


def test_a_wrong_model_stops_the_run_after_the_first_answers(server, tiny_model, tmp_path,
                                                              monkeypatch):
    monkeypatch.setenv("TEST_TEACHER_KEY", "sk-planted-secret-0123456789abcdef")
    params = settings(server, "no-such-model", concurrency=2, api_key_env="TEST_TEACHER_KEY")
    with FaultProxy(server) as proxy:
        params = params.model_copy(update={"base_url": proxy.base_url})
        with pytest.raises(TeacherIncomplete, match="404 NotFoundError") as caught:
            run(params, tmp_path / "cache.sqlite")
        assert proxy.received <= 2, "requests were sent after a 404 for the model"
    assert "sk-planted" not in str(caught.value)
    assert caught.value.stats.failed == 6  # every rationale; no answer was asked


def test_estimate_command_prints_the_same_figures(server, tiny_model, tmp_path, monkeypatch):
    from cotdistill.cli import app

    model = str(tiny_model)
    params = settings(server, model, prices={model: PRICE})
    monkeypatch.chdir(_cli_dir(tmp_path, params.model_dump(exclude_defaults=True)))
    before = served(server)
    result = CliRunner().invoke(app, ["estimate", "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    expected = estimate(EXAMPLES, params, make_backend(params),
                        tmp_path / ".cotdistill/teacher-cache.sqlite")
    assert printed == json.loads(json.dumps(expected.as_dict()))
    assert printed["total"]["calls"] == UNIQUE and printed["total"]["usd"] > 0
    assert served(server) == before, "estimate sent a request"
    table = CliRunner().invoke(app, ["estimate"])
    assert table.exit_code == 0 and "rationale" in table.output and "total" in table.output


@pytest.mark.parametrize("update, message", [
    ({"max_usd": 1.0}, "needs a price"),
    ({"backend": "replay", "top_logprobs": 2}, "needs a model to ask"),
])
def test_settings_that_cannot_work_are_refused(update, message):
    with pytest.raises(ValueError, match=message):
        TeacherParams(**{"backend": "openai", "model": "gpt-4o-mini", **update})


def test_backoff_honours_retry_after_with_jitter_and_grows_exponentially():
    from cotdistill.teachers.openai import backoff_s, retry_after_s, scrub

    waits = [backoff_s(0, 1.0, 60.0, 5.0) for _ in range(200)]
    assert all(5.0 <= w <= 6.0 for w in waits) and len(set(waits)) > 100  # floor + jitter
    assert all(0.5 <= backoff_s(0, 1.0, 60.0, None) <= 1.0 for _ in range(50))
    assert all(8.0 <= backoff_s(4, 1.0, 60.0, None) <= 16.0 for _ in range(50))
    assert all(30.0 <= backoff_s(20, 1.0, 60.0, None) <= 60.0 for _ in range(50))
    assert retry_after_s({"retry-after": "3"}) == 3.0
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "3"}) == 0.25
    assert retry_after_s({}) is None
    assert scrub("bad key sk-abcdefghijklmnop", "sk-abcdefghijklmnop") == "bad key ***"


def test_rpm_paces_the_requests(server, tiny_model, tmp_path):
    class Arrivals(list):  # when each request reached the proxy
        times: list[float] = []

        def append(self, item) -> None:
            self.times.append(time.monotonic())
            super().append(item)

    with FaultProxy(server) as proxy:
        proxy.applied = arrivals = Arrivals()
        params = settings(proxy.base_url, tiny_model, rpm=240, concurrency=8)  # 4 a second
        _, stats = run(params, tmp_path / "cache.sqlite")
    assert stats.generated == UNIQUE == len(arrivals.times)
    start = arrivals.times[0]
    for k, at in enumerate(arrivals.times):  # a burst of 4, then 4 a second, across both steps
        assert at - start >= (k - 3) / 4 - 0.05, f"request {k} came {at - start:.2f}s in"


def test_a_backend_collected_while_another_event_loop_runs_closes_its_own_quietly(
        server, tiny_model, tmp_path, monkeypatch):
    """The collector may free a backend in the middle of the next one's calls (inside its
    event loop); its loop is still closed, and nothing is raised into the void."""
    import asyncio
    import gc
    import sys

    backend = make_backend(settings(server, tiny_model), tmp_path / "cache.sqlite")
    run_teacher(EXAMPLES, backend.params, backend, tmp_path / "cache.sqlite")
    loop = backend._runner.get_loop()
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    async def collect_it() -> None:
        nonlocal backend
        del backend
        gc.collect()

    asyncio.run(collect_it())
    assert loop.is_closed()
    assert unraisable == []


def test_an_openai_estimate_without_tiktokens_encoding_is_labelled_approximate(tmp_path,
                                                                                monkeypatch):
    """Offline, tiktoken cannot fetch its encoding: `estimate` still answers, with the prompt
    tokens counted at about four characters a token and said to be approximate; the calls and
    the completion tokens stay exact."""
    from cotdistill.teachers import budget

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # the download fails at once
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    budget.prompt_token_counter.cache_clear()
    params = TeacherParams(backend="openai", model="gpt-4o-mini", samples=1, api="chat",
                           max_rationale_tokens=10, max_answer_tokens=4,
                           prices={"gpt-4o-mini": {"prompt": 0.15, "completion": 0.6}})
    result = estimate(EXAMPLES[:2], params, make_backend(params), tmp_path / "cache.sqlite")
    budget.prompt_token_counter.cache_clear()
    assert result.note and result.note.startswith("APPROXIMATE prompt tokens")
    assert "APPROXIMATE" in "\n".join(result.lines())
    rationale = result.steps[0]
    assert rationale.calls == 2 and rationale.completion_tokens == 2 * 10
    prompts_chars = rationale.prompt_tokens - 2 * 7  # the chat overhead per message
    assert 0 < prompts_chars < sum(len(e.question) for e in EXAMPLES[:2])


def test_estimate_on_a_replay_setup_costs_nothing_and_succeeds(tmp_path, monkeypatch):
    """The default set-up replays a published log: no model is called, so zero, exit 0, even
    before `prepare` has run."""
    from cotdistill.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("teacher:\n  backend: replay\n")
    result = CliRunner().invoke(app, ["estimate", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["total"]["calls"] == 0 and figures["total"]["usd"] == 0.0
    assert "calls no model" in figures["note"]


def test_a_cut_during_batch_create_buys_no_second_batch(server, tiny_model, tmp_path):
    """The server made the batch but the answer was cut: the SDK's retry would create another.
    The create is sent once; the listing finds the batch by its request-set tag."""
    params = settings(server, tiny_model, backend="openai_batch", batch_poll_s=0.05, seed=13,
                      max_retries=2)
    created = batches_created(server)
    with FaultProxy(server) as proxy:
        proxy.schedule("pass", "pass", "cut")  # list, upload the file, create (cut)
        run(params.model_copy(update={"base_url": proxy.base_url}), tmp_path / "cache.sqlite")
        assert [fault for fault, method, path in proxy.applied][:3] == ["pass", "pass", "cut"]
    assert batches_created(server) - created == 2, "a cut create was paid for twice"


def test_a_failed_batch_listing_stops_the_run_and_creates_nothing(server, tiny_model,
                                                                  tmp_path):
    params = settings(server, tiny_model, backend="openai_batch", batch_poll_s=0.05, seed=16,
                      max_retries=0)
    created = batches_created(server)
    with FaultProxy(server) as proxy:
        proxy.schedule("500")  # the listing that looks for a batch made but not recorded
        with pytest.raises(TeacherIncomplete, match="batch submit"):
            run(params.model_copy(update={"base_url": proxy.base_url}),
                tmp_path / "cache.sqlite")
    assert batches_created(server) == created


def test_the_batch_listing_is_paged_and_the_lookup_reads_every_page(server, tiny_model,
                                                                    tmp_path, monkeypatch):
    from openai import OpenAI

    from cotdistill.teachers import openai_batch

    params = settings(server, tiny_model, backend="openai_batch", batch_poll_s=0.05, seed=14)
    die_after_batch_create(params, tmp_path / "cache.sqlite", monkeypatch)
    run(params.model_copy(update={"seed": 15}), tmp_path / "other.sqlite")  # 2 newer batches
    client = OpenAI(base_url=server, api_key="x")
    listed = [batch.id for batch in client.batches.list(limit=1)]  # one per page, every page
    assert len(listed) == len(set(listed)) == batches_created(server)
    monkeypatch.setattr(openai_batch, "LIST_PAGE", 1)  # the unrecorded batch is pages away
    created = batches_created(server)
    run(params, tmp_path / "cache.sqlite")
    assert batches_created(server) - created == 1, "the unrecorded batch was not found"
