"""Nothing paid twice: runs sharing one cache, a lost cache, a pulled rationale dataset.

Every test runs ``cotdistill teacher`` as a subprocess against the real server on loopback and
counts, with the server's own counters, the completion requests that were paid for.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from support.teacher_runs import (
    ENV,
    cached,
    report,
    run_teacher_stage,
    served,
    teacher_command,
    workdir,
    write_params,
)

from cotdistill.serve import running_server

QUESTIONS = 4


def teacher_params(url: str, model: str, *, samples: int = 2, **extra) -> dict:
    return dict(backend="openai", base_url=url, model=model, api="completions",
                samples=samples, temperature=0.8, max_rationale_tokens=12, max_answer_tokens=4,
                concurrency=2, retry_base_s=0.1, timeout_s=60, **extra)


def keys(samples: int) -> int:
    return QUESTIONS * samples * 2  # a rationale and an answer per question-sample


@pytest.fixture(scope="module")
def server(tiny_model):
    with running_server(str(tiny_model), max_batch=4, batch_window_s=0.01) as url:
        yield url, str(tiny_model)


def test_two_runs_started_together_on_one_cache_pay_for_each_key_once(server, tmp_path):
    url, model = server
    # the second run is where `dvc queue start -j 2` runs an experiment: a temporary copy
    # inside the repository, sharing the repository's cache
    paced = teacher_params(url, model, rpm=150)  # slow enough for the two runs to overlap
    first = workdir(tmp_path / "repo", paced, QUESTIONS)
    second = workdir(first / ".dvc/tmp/exps/queued", paced, QUESTIONS)
    before = served(url)
    processes = [subprocess.Popen(teacher_command(cwd), cwd=cwd, env=ENV, text=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for cwd in (first, second)]
    errors = [process.communicate(timeout=300)[1] for process in processes]
    for process, stderr in zip(processes, errors):
        assert process.returncode == 0, stderr[-2000:]
    assert served(url) - before == keys(2), "a cache key was requested more than once"
    assert cached(first / ".cotdistill/teacher-cache.sqlite") == keys(2)
    assert not (second / ".cotdistill").exists()  # the queued copy used the repository's cache
    one, two = report(first), report(second)
    assert one["calls"] + two["calls"] == keys(2)
    assert one["shared"] + two["shared"] > 0, "the runs did not overlap: nothing was proven"
    completions = "data/teacher/completions.jsonl"
    assert (first / completions).read_text() == (second / completions).read_text()


def test_a_pulled_rationale_dataset_is_a_cache_for_more_samples(server, tmp_path):
    url, model = server
    teammate = workdir(tmp_path / "teammate", teacher_params(url, model), QUESTIONS)
    assert run_teacher_stage(teammate).returncode == 0
    # `git pull && dvc pull` brings data/teacher/completions.jsonl, never .cotdistill/
    me = workdir(tmp_path / "me", teacher_params(url, model, samples=4), QUESTIONS)
    (me / "data/teacher").mkdir(parents=True)
    shutil.copy(teammate / "data/teacher/completions.jsonl", me / "data/teacher")
    before = served(url)
    done = run_teacher_stage(me)
    assert done.returncode == 0, done.stderr[-2000:]
    assert served(url) - before == keys(4) - keys(2), "samples 0 and 1 were bought again"
    assert report(me)["restored"] == keys(2)
    pulled = (teammate / "data/teacher/completions.jsonl").read_text().splitlines()
    mine = (me / "data/teacher/completions.jsonl").read_text().splitlines()
    assert [line for line in mine if '"sample":0' in line or '"sample":1' in line] == pulled


def test_an_emptied_cache_file_is_refilled_from_the_stage_output_not_paid_again(server, tmp_path):
    url, model = server
    cwd = workdir(tmp_path / "repo", teacher_params(url, model), QUESTIONS)
    assert run_teacher_stage(cwd).returncode == 0
    made = (cwd / "data/teacher/completions.jsonl").read_text()
    (cwd / ".cotdistill/teacher-cache.sqlite").write_bytes(b"")  # `: > teacher-cache.sqlite`
    for suffix in ("-wal", "-shm"):
        (cwd / f".cotdistill/teacher-cache.sqlite{suffix}").unlink(missing_ok=True)
    before = served(url)
    again = run_teacher_stage(cwd)
    assert again.returncode == 0, again.stderr[-2000:]
    assert served(url) == before
    assert (cwd / "data/teacher/completions.jsonl").read_text() == made


def test_a_damaged_cache_is_one_line_naming_it_before_any_call_and_is_left_as_it_is(
        server, tmp_path):
    url, model = server
    cwd = workdir(tmp_path / "repo", teacher_params(url, model), QUESTIONS)
    assert run_teacher_stage(cwd).returncode == 0
    cache = cwd / ".cotdistill/teacher-cache.sqlite"
    for suffix in ("-wal", "-shm"):  # what a clean close leaves: the database file alone
        assert not (cwd / f".cotdistill/teacher-cache.sqlite{suffix}").exists()
    with cache.open("r+b") as handle:  # printf GARBAGE | dd of=... conv=notrunc
        handle.write(b"GARBAGE")
    damaged = cache.read_bytes()
    write_params(cwd, teacher_params(url, model, samples=3))  # calls still to make
    before = served(url)
    failed = run_teacher_stage(cwd)
    assert failed.returncode == 1
    lines = failed.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: {cache}: not a readable teacher cache")
    assert "Traceback" not in failed.stderr
    assert "mv " in lines[-1] and ".recover" in lines[-1]  # says what to do
    assert served(url) == before
    assert cache.read_bytes() == damaged  # paid entries that can still be read are kept
    cache.rename(cache.with_name(cache.name + ".damaged"))  # what the line says to do
    again = run_teacher_stage(cwd)
    assert again.returncode == 0, again.stderr[-2000:]
    assert served(url) - before == keys(3) - keys(2), "the advice re-bought what was paid"


def test_a_read_only_cache_stops_the_run_before_the_first_call(server, tmp_path):
    url, model = server
    cwd = workdir(tmp_path / "repo", teacher_params(url, model), QUESTIONS)
    assert run_teacher_stage(cwd).returncode == 0
    write_params(cwd, teacher_params(url, model, samples=3))
    cache = cwd / ".cotdistill/teacher-cache.sqlite"
    with read_only(cache):
        before, started = served(url), time.monotonic()
        failed = run_teacher_stage(cwd)
        took = time.monotonic() - started
        assert failed.returncode == 1
        assert failed.stderr.strip().splitlines()[-1].startswith(
            f"error: {cache}: the teacher cache cannot be written")
        assert "Traceback" not in failed.stderr
        assert served(url) == before, "a call was made with nowhere to store its response"
        assert took < 30
        estimate = subprocess.run([*teacher_command(cwd)[:3], "estimate", "--params",
                                   str(cwd / "params.yaml")], cwd=cwd, env=ENV, text=True,
                                  capture_output=True, timeout=120, check=False)
        assert estimate.returncode == 0, estimate.stderr  # looking needs no write


class read_only:
    """The file cannot be written, even by root (``chattr +i``; ``chmod`` where not root)."""

    def __init__(self, path) -> None:
        self.path = path

    def __enter__(self):
        import os

        if os.geteuid() != 0:
            self.path.chmod(0o444)
            self.path.parent.chmod(0o555)
            return self
        made = subprocess.run(["chattr", "+i", str(self.path)], capture_output=True,
                              check=False)
        if made.returncode != 0:
            pytest.skip(f"chattr +i is not available here: {made.stderr!r}")
        return self

    def __exit__(self, *exc) -> None:
        import os

        if os.geteuid() != 0:
            self.path.parent.chmod(0o755)
            self.path.chmod(0o644)
        else:
            subprocess.run(["chattr", "-i", str(self.path)], check=True)


def test_two_clones_pointed_at_one_cache_file_pay_once(server, tmp_path):
    """$COTDISTILL_TEACHER_CACHE: clones elsewhere on a machine (or on one volume) share it."""
    url, model = server
    shared = tmp_path / "volume" / "teacher-cache.sqlite"
    env = {**ENV, "COTDISTILL_TEACHER_CACHE": str(shared)}
    clones = [workdir(tmp_path / name, teacher_params(url, model), QUESTIONS)
              for name in ("clone-a", "clone-b")]
    before = served(url)
    for clone in clones:
        ran = subprocess.run(teacher_command(clone), cwd=clone, env=env, capture_output=True,
                             text=True, timeout=300, check=False)
        assert ran.returncode == 0, ran.stderr[-2000:]
    assert served(url) - before == keys(2)  # the second clone bought nothing
    assert cached(shared) == keys(2)
    assert not any((clone / ".cotdistill/teacher-cache.sqlite").exists() for clone in clones)
    assert report(clones[1])["calls"] == 0
