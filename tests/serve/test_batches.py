"""The Batch API of cotdistill.serve through the official openai client: files, batches, cancel.

A batch line's answer is the direct request's answer; a line the protocol refuses lands in the
error file with its status code; Batch API lines are counted apart from direct completions.
"""

from __future__ import annotations

import json
import time


def test_batch_api_round_trip(client, model_name, stats, texts):
    lines = [{"custom_id": f"q-{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": model_name, "max_tokens": 6, "temperature": 0.5, "seed": i,
                       "messages": [{"role": "user", "content": f"Question {i}"}]}}
             for i in range(5)]
    lines.append({"custom_id": "bad", "method": "POST", "url": "/v1/chat/completions",
                  "body": {"model": "other-model", "messages": [{"role": "user", "content": "x"}]}})
    before = stats()
    upload = client.files.create(
        file=("requests.jsonl", "".join(json.dumps(x) + "\n" for x in lines).encode()),
        purpose="batch")
    assert client.files.retrieve(upload.id).bytes == upload.bytes > 0
    batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    assert batch.status in ("validating", "in_progress")
    deadline = time.monotonic() + 30
    while batch.status not in ("completed", "failed", "cancelled"):
        assert time.monotonic() < deadline, batch
        time.sleep(0.1)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed"
    after = stats()
    assert after["batch_lines"] - before["batch_lines"] == 5
    assert after["completions"] == before["completions"], "batch lines are counted apart"
    assert (batch.request_counts.total, batch.request_counts.completed,
            batch.request_counts.failed) == (6, 5, 1)
    output = [json.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()]
    assert sorted(x["custom_id"] for x in output) == [f"q-{i}" for i in range(5)]
    for entry in output:
        assert entry["response"]["status_code"] == 200 and entry["error"] is None
        i = int(entry["custom_id"].removeprefix("q-"))
        direct = client.chat.completions.create(**lines[i]["body"])
        assert entry["response"]["body"]["choices"][0]["message"]["content"] == texts(direct)[0]
    errors = [json.loads(x) for x in client.files.content(batch.error_file_id).text.splitlines()]
    assert [(e["custom_id"], e["response"]["status_code"]) for e in errors] == [("bad", 404)]


def submit_completions(client, model_name: str, name: str, *, count: int, max_tokens: int):
    """A Batch API job of ``count`` one-prompt completion requests, submitted."""
    lines = [{"custom_id": f"{name}-{i}", "method": "POST", "url": "/v1/completions",
              "body": {"model": model_name, "prompt": f"{i}", "max_tokens": max_tokens}}
             for i in range(count)]
    upload = client.files.create(
        file=(f"{name}.jsonl", "".join(json.dumps(x) + "\n" for x in lines).encode()),
        purpose="batch")
    return client.batches.create(input_file_id=upload.id, endpoint="/v1/completions",
                                 completion_window="24h")


def test_batch_cancel(client, model_name):
    batch = submit_completions(client, model_name, "c", count=200, max_tokens=64)
    cancelled = client.batches.cancel(batch.id)
    assert cancelled.status in ("cancelling", "cancelled", "completed")
    deadline = time.monotonic() + 20
    while cancelled.status == "cancelling":
        assert time.monotonic() < deadline
        time.sleep(0.1)
        cancelled = client.batches.retrieve(batch.id)
    assert cancelled.status == "cancelled"
    assert cancelled.request_counts.completed < 200


def test_a_large_batch_queues_only_a_few_calls_of_work_at_a_time(client, model_name, stats):
    batch = submit_completions(client, model_name, "w", count=120, max_tokens=4)
    most = 0
    deadline = time.monotonic() + 60
    while batch.status not in ("completed", "failed", "cancelled"):
        assert time.monotonic() < deadline, batch
        most = max(most, stats()["queued_batch_rows"])
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.request_counts.completed == 120
    assert 0 < most <= 4 * 8, "at most 4 generate calls (max_batch 8) of rows queued"
