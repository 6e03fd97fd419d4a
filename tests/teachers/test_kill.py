"""SIGKILL the ``cotdistill teacher`` process mid-run against a real server; nothing is lost.

The stage runs as a subprocess against ``cotdistill.serve`` on loopback. Once some responses
are in the cache it is killed with SIGKILL (no handler, no cleanup), then run again: the
server's own counters show the re-run asked only for what the cache did not hold, and the
final completions equal those of an uninterrupted run in another directory with its own cache.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from support.teacher_runs import cached, served, teacher_command, workdir

from cotdistill.serve import running_server

QUESTIONS = 20
SAMPLES = 2
UNIQUE = QUESTIONS * SAMPLES * 2  # rationale + answer per question-sample


def settle(url: str, quiet_s: float = 1.0, limit_s: float = 30.0) -> int:
    """The server's count once it stopped moving (requests of the killed client finish)."""
    deadline = time.monotonic() + limit_s
    last, since = served(url), time.monotonic()
    while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        time.sleep(0.1)
        now = served(url)
        if now != last:
            last, since = now, time.monotonic()
    return last


@pytest.mark.slow
def test_sigkill_mid_run_then_a_rerun_asks_only_for_the_rest(tiny_model, tmp_path):
    with running_server(str(tiny_model), max_batch=4, batch_window_s=0.01) as url:
        teacher = dict(backend="openai", base_url=url, model=str(tiny_model), api="completions",
                       samples=SAMPLES, temperature=0.8, max_rationale_tokens=16,
                       max_answer_tokens=4, concurrency=2, retry_base_s=0.1, timeout_s=60)
        killed = workdir(tmp_path / "killed", teacher, QUESTIONS)
        whole = workdir(tmp_path / "whole", teacher, QUESTIONS)
        cache = killed / ".cotdistill/teacher-cache.sqlite"
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}

        process = subprocess.Popen(teacher_command(killed), cwd=killed, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while cached(cache) < 10:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the stage made no progress"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        process.stderr.close()
        assert process.returncode == -signal.SIGKILL
        kept = cached(cache)
        assert 10 <= kept < UNIQUE, "killed too late to prove anything"
        assert not (killed / "data/teacher/completions.jsonl").exists()

        before = settle(url)  # what the killed run had in flight may still finish
        rerun = subprocess.run(teacher_command(killed), cwd=killed, env=env,
                               capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert served(url) - before == UNIQUE - kept, "the re-run repeated a completed call"
        assert cached(cache) == UNIQUE

        uninterrupted = subprocess.run(teacher_command(whole), cwd=whole, env=env,
                                       capture_output=True, text=True, timeout=300)
        assert uninterrupted.returncode == 0, uninterrupted.stderr[-2000:]
    resumed = (killed / "data/teacher/completions.jsonl").read_text()
    assert resumed.count("\n") == QUESTIONS * SAMPLES
    assert resumed == (whole / "data/teacher/completions.jsonl").read_text()
