"""Specification of file I/O: JSON Lines, atomic outputs, the teacher cache, the repository root."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cotdistill.atomic import atomic_dir, atomic_file, write_text
from cotdistill.errors import CotdistillError
from cotdistill.jsonl import read_records, write_records
from cotdistill.methods.socratic.decompositions import Decomposition
from cotdistill.layout import repo_root
from cotdistill.records import (
    ClusteredExemplar,
    CuratedExample,
    Prediction,
    PreparedExample,
    TeacherCompletion,
    TeacherTokens,
)
from cotdistill.teachers.cache import ResponseCache, response_key

GOOD = {
    "id": "coin_flip-00001", "dataset": "coin_flip", "split": "train",
    "question": "A coin is heads up. Is the coin still heads up?", "answer": "yes",
    "answer_type": "yes_no",
}


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


class Boom(Exception):
    pass


# --- JSON Lines ------------------------------------------------------------------------------

def test_write_records_round_trips_models(tmp_path):
    records = [PreparedExample(**GOOD), PreparedExample(**{**GOOD, "id": "b", "choices": ["x"]})]
    path = tmp_path / "sub" / "out.jsonl"
    assert write_records(path, records) == 2
    assert read_records(path, PreparedExample) == records


def test_write_records_accepts_plain_dicts_one_per_line(tmp_path):
    path = tmp_path / "out.jsonl"
    assert write_records(path, [GOOD, {**GOOD, "id": "b", "question": "naïve?"}]) == 2
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == [GOOD["id"], "b"]
    assert "naïve" in lines[1]
    assert [r.id for r in read_records(path, PreparedExample)] == [GOOD["id"], "b"]


def test_read_records_skips_blank_lines(tmp_path):
    path = _write_lines(tmp_path / "d.jsonl", [json.dumps(GOOD), "", "   ", json.dumps(GOOD)])
    assert len(read_records(path, PreparedExample)) == 2


def test_bad_json_names_file_and_line(tmp_path):
    path = _write_lines(tmp_path / "d.jsonl", [json.dumps(GOOD), '{"id": "x",'])
    with pytest.raises(CotdistillError, match=r"d\.jsonl:2: not valid JSON"):
        read_records(path, PreparedExample)


def test_missing_field_names_file_line_and_field(tmp_path):
    record = {k: v for k, v in GOOD.items() if k != "question"}
    path = _write_lines(tmp_path / "d.jsonl", [json.dumps(GOOD), json.dumps(record)])
    with pytest.raises(CotdistillError, match=r"d\.jsonl:2: question: Field required"):
        read_records(path, PreparedExample)


def test_unknown_split_names_file_line_and_field(tmp_path):
    lines = [json.dumps(GOOD), "", json.dumps({**GOOD, "split": "dev"})]
    path = _write_lines(tmp_path / "d.jsonl", lines)
    with pytest.raises(CotdistillError, match=r"d\.jsonl:3: split: "):
        read_records(path, PreparedExample)


def test_an_extra_field_breaks_the_contract(tmp_path):
    path = _write_lines(tmp_path / "d.jsonl", [json.dumps({**GOOD, "colour": "red"})])
    with pytest.raises(CotdistillError, match=r"d\.jsonl:1: colour: "):
        read_records(path, PreparedExample)


def test_a_line_that_is_not_an_object_is_rejected(tmp_path):
    path = _write_lines(tmp_path / "d.jsonl", ["[1, 2]"])
    with pytest.raises(CotdistillError, match=r"d\.jsonl:1: record: "):
        read_records(path, PreparedExample)


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_an_empty_file_raises(tmp_path, content):
    path = tmp_path / "d.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CotdistillError, match=r"d\.jsonl: is empty"):
        read_records(path, PreparedExample)


def test_an_empty_file_is_allowed_when_asked(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("", encoding="utf-8")
    assert read_records(path, PreparedExample, allow_empty=True) == []


def test_a_missing_file_raises(tmp_path):
    with pytest.raises(CotdistillError, match=r"nothere\.jsonl: file not found"):
        read_records(tmp_path / "nothere.jsonl", PreparedExample, allow_empty=True)


def test_a_failing_write_records_leaves_the_old_file(tmp_path):
    path = tmp_path / "d.jsonl"
    write_records(path, [GOOD])

    def records():
        yield {**GOOD, "id": "new"}
        raise Boom

    with pytest.raises(Boom):
        write_records(path, records())
    assert [r.id for r in read_records(path, PreparedExample)] == [GOOD["id"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl"]


def test_a_byte_that_is_not_utf8_names_file_line_and_column(tmp_path):
    path = tmp_path / "d.jsonl"
    bad = json.dumps({**GOOD, "question": "caf\u00e9?"}).encode().replace(b"\\u00e9", b"\xe9")
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + bad + b"\n")
    column = bad.index(b"\xe9") + 1
    with pytest.raises(CotdistillError) as info:
        read_records(path, PreparedExample)
    assert str(info.value) == f"{path}:2: not valid UTF-8 (byte 0xe9 at column {column})"


COMPLETION = {
    "id": "coin_flip-00001", "dataset": "coin_flip", "sample": 0, "backend": "openai",
    "model": "m", "prompt_id": "zero_shot_cot", "sampling": {"temperature": 0.7, "seed": 1},
    "rationale": "The coin was flipped.", "answer_text": " yes", "prediction": "yes",
    "correct": True,
}


@pytest.mark.parametrize(("field", "value", "given"), [
    ("correct", "no", "not a string"),
    ("correct", 0, "not a number"),
    ("sample", "0", "not a string"),
    ("sample", 1.0, "not a number"),
    ("sample", True, "not true/false"),
    ("prediction", 1, "not a number"),
    ("hinted", "false", "not a string"),
])
def test_a_completion_field_of_the_wrong_type_is_refused_not_converted(tmp_path, field, value,
                                                                       given):
    lines = [json.dumps(COMPLETION), json.dumps({**COMPLETION, field: value})]
    path = _write_lines(tmp_path / "c.jsonl", lines)
    with pytest.raises(CotdistillError) as info:
        read_records(path, TeacherCompletion)
    assert str(info.value).startswith(f"{path}:2: {field}: ") and given in str(info.value)


def test_a_usage_field_of_the_wrong_type_names_its_path(tmp_path):
    path = _write_lines(tmp_path / "c.jsonl", [json.dumps({**COMPLETION, "usage": {"calls": "2"}})])
    with pytest.raises(CotdistillError, match=r"c\.jsonl:1: usage\.calls: .*integer"):
        read_records(path, TeacherCompletion)


@pytest.mark.parametrize("record", [
    PreparedExample(**{**GOOD, "choices": ["yes", "no"], "subquestions": [["q", "a"]]}),
    TeacherCompletion(**{**COMPLETION, "hinted": True, "top_logprobs": [{"The": -0.1, "A": -3}],
                         "tokens": ["The"], "lineage": {"file": "x.json", "position": 3},
                         "usage": {"calls": 2, "prompt_tokens": 10, "completion_tokens": 5,
                                   "usd": 0}}),
    TeacherCompletion(**{**COMPLETION, "prediction": None, "correct": False,
                         "sampling": {"temperature": 0, "seed": None}}),
    CuratedExample(id="a", dataset="coin_flip", method="fine_tune_cot", source="a#0",
                   input="q ###", target=" r --> yes", task="rationale", weight=0.5,
                   teacher_tokens=TeacherTokens(starts=[0], tokens=[" r"],
                                                top_logprobs=[{" r": 0.0}])),
    CuratedExample(id="a", dataset="coin_flip", method="answer_only", source=None,
                   input="q ###", target=" yes"),
    Prediction(id="a", dataset="coin_flip", student="s", method="m", output="yes",
               prediction=None, answer="yes", correct=False),
    ClusteredExemplar(dataset="coin_flip", cluster=0, rank=1, distance=0.5, id="a", question="q",
             rationale="r", answer="yes", source="a#0"),
    Decomposition(id="a", dataset="gsm8k", source="gold", pairs=[("q1", "a1")],
                  final_answer="1", correct=True),
])
def test_every_record_the_pipeline_writes_reads_back_strictly(tmp_path, record):
    path = tmp_path / "r.jsonl"
    write_records(path, [record])
    assert read_records(path, type(record)) == [record]


# --- atomic outputs --------------------------------------------------------------------------

def test_atomic_file_replaces_the_target_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old", encoding="utf-8")
    with atomic_file(target) as tmp:
        assert tmp != target and tmp.parent == target.parent
        tmp.write_text("new", encoding="utf-8")
        assert target.read_text(encoding="utf-8") == "old"  # not visible until the end
    assert target.read_text(encoding="utf-8") == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_file_creates_missing_parent_directories(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    write_text(target, "hello")
    assert target.read_text(encoding="utf-8") == "hello"


def test_atomic_file_leaves_the_target_unchanged_when_the_block_raises(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(Boom), atomic_file(target) as tmp:
        tmp.write_text("half", encoding="utf-8")
        raise Boom
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_file_creates_nothing_when_the_block_raises(tmp_path):
    with pytest.raises(Boom), atomic_file(tmp_path / "out.txt"):
        raise Boom
    assert list(tmp_path.iterdir()) == []


def test_atomic_file_gets_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        write_text(tmp_path / "out.txt", "x")
    finally:
        os.umask(umask)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644


def test_atomic_dir_replaces_the_target_on_success(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.bin").write_text("old", encoding="utf-8")
    with atomic_dir(target) as tmp:
        assert list(tmp.iterdir()) == []
        (tmp / "fresh.bin").write_text("new", encoding="utf-8")
    assert sorted(p.name for p in target.iterdir()) == ["fresh.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_atomic_dir_replaces_a_file_at_the_target(tmp_path):
    target = tmp_path / "model"
    target.write_text("a file", encoding="utf-8")
    with atomic_dir(target) as tmp:
        (tmp / "f").write_text("x", encoding="utf-8")
    assert target.is_dir() and (target / "f").is_file()


def test_atomic_dir_leaves_the_target_unchanged_when_the_block_raises(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.bin").write_text("old", encoding="utf-8")
    with pytest.raises(Boom), atomic_dir(target) as tmp:
        (tmp / "partial.bin").write_text("half", encoding="utf-8")
        raise Boom
    assert sorted(p.name for p in target.iterdir()) == ["stale.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_atomic_dir_creates_nothing_when_the_block_raises(tmp_path):
    with pytest.raises(Boom), atomic_dir(tmp_path / "model"):
        raise Boom
    assert list(tmp_path.iterdir()) == []


# --- teacher response cache ------------------------------------------------------------------

def test_response_cache_persists_across_reopen(tmp_path):
    path = tmp_path / "state" / "cache.sqlite"
    cache = ResponseCache(path)
    cache.put_many({"k1": {"text": "one", "tokens": 3}, "k2": {"text": "two"}})
    cache.close()
    reopened = ResponseCache(path)
    try:
        assert len(reopened) == 2
        assert reopened.get("k1") == {"text": "one", "tokens": 3}
        assert reopened.get("k2") == {"text": "two"}
    finally:
        reopened.close()


def test_response_cache_misses_give_none(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    try:
        assert cache.get("absent") is None
        assert len(cache) == 0
    finally:
        cache.close()


def test_response_cache_put_replaces_an_existing_key(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    try:
        cache.put_many({"k": {"text": "old"}})
        cache.put_many({"k": {"text": "new"}})
        assert cache.get("k") == {"text": "new"}
        assert len(cache) == 1
    finally:
        cache.close()


def test_two_runs_opening_a_new_cache_at_the_same_moment_both_open_it(tmp_path):
    """SQLite refuses the switch to WAL at once (no busy wait) to the slower of two connections
    creating the file; that used to fail a parallel run (`dvc queue start -j 2`) at random."""
    import threading

    faults: list[str] = []

    def open_and_close(path: Path) -> None:
        try:
            ResponseCache(path).close()
        except CotdistillError as exc:
            faults.append(str(exc))

    for attempt in range(150):  # before the fix, about 1 in 12 pairs failed
        path = tmp_path / f"cache-{attempt}.sqlite"
        threads = [threading.Thread(target=open_and_close, args=(path,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert faults == []


def test_response_key_depends_on_every_field_but_not_their_order():
    key = response_key(backend="transformers", model="m", prompt="p", sample=0)
    assert key == response_key(sample=0, prompt="p", model="m", backend="transformers")
    assert key != response_key(backend="transformers", model="m", prompt="p", sample=1)
    assert key != response_key(backend="transformers", model="m2", prompt="p", sample=0)


# --- repository root -------------------------------------------------------------------------

def test_repo_root_maps_a_dvc_temporary_experiment_back_to_the_repository(tmp_path):
    repo = tmp_path.resolve() / "repo"
    assert repo_root(repo / ".dvc" / "tmp" / "exps" / "tmpabc" / "sub") == repo


def test_repo_root_of_the_experiment_directory_itself(tmp_path):
    repo = tmp_path.resolve() / "repo"
    assert repo_root(repo / ".dvc" / "tmp" / "exps" / "tmpabc") == repo


def test_repo_root_of_an_ordinary_directory_is_that_directory(tmp_path):
    here = tmp_path.resolve() / "repo" / "sub"
    assert repo_root(here) == here


def test_repo_root_needs_the_whole_dvc_exps_path(tmp_path):
    here = tmp_path.resolve() / "repo" / ".dvc" / "tmp" / "other"
    assert repo_root(here) == here


def test_repo_root_defaults_to_the_working_directory(tmp_path, monkeypatch):
    nested = tmp_path / ".dvc" / "tmp" / "exps" / "run1"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert repo_root() == tmp_path.resolve()


def test_relative_params_paths_are_taken_from_the_repository_root(tmp_path, monkeypatch):
    from cotdistill.layout import from_root

    experiment = tmp_path / ".dvc" / "tmp" / "exps" / "tmpxyz"
    experiment.mkdir(parents=True)
    monkeypatch.chdir(experiment)
    assert from_root("../shared/mirror") == tmp_path / "../shared/mirror"
    assert from_root("/abs/mirror") == Path("/abs/mirror")
