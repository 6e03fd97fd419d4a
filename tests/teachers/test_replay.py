"""The replay backend: published CompletionDataset files become teacher-completion records."""

from __future__ import annotations

import json

import pytest
from support.repo import REPO

from cotdistill.datasets.build import prepare
from cotdistill.datasets.sources import FileSource
from cotdistill.errors import CotdistillError
from cotdistill.params import PrepareParams
from cotdistill.teachers.replay import replay

SHARED = REPO.parent / "shared/data"
COMPLETIONS = SHARED / "teacher/text-davinci-002/zs_cot"


@pytest.fixture(scope="module")
def multiarith(tmp_path_factory):
    source = FileSource(SHARED / "mirror", tmp_path_factory.mktemp("cache"), download=False)
    return prepare(PrepareParams(datasets=["multiarith"]), source)["train"]


def test_every_train_question_gets_its_published_completion(multiarith):
    records, stats = replay(multiarith, COMPLETIONS, samples=1, match="question")
    assert stats.files == 1
    assert {r.id for r in records} == {e.id for e in multiarith}
    assert stats.not_asked > 0  # the test questions' completions are left out
    by_id = {e.id: e for e in multiarith}
    for record in records:
        assert record.backend == "replay" and record.model == "text-davinci-002"
        assert record.prompt_id == "replay:zs_cot" and record.sample == 0
        assert record.rationale and record.answer_text
        assert record.correct == (record.prediction == by_id[record.id].answer)
    accuracy = sum(r.correct for r in records) / len(records)
    assert 0.7 < accuracy < 0.9  # text-davinci-002 scores 78.67% on all of MultiArith


def test_records_follow_the_example_order(multiarith):
    records, _ = replay(multiarith, COMPLETIONS, samples=1, match="question")
    positions = {e.id: i for i, e in enumerate(multiarith)}
    assert [positions[r.id] for r in records] == sorted(positions[r.id] for r in records)


def test_a_file_out_of_reasoning_teacher_order_is_refused_under_sample_index_matching(multiarith):
    with pytest.raises(CotdistillError, match=r"D_multiarith.json: data\.\d+: the question differs"):
        replay(multiarith, COMPLETIONS, samples=1, match="sample_index")


def test_sample_index_matching_maps_index_to_example_id(multiarith, tmp_path):
    example = multiarith[0]
    index = int(example.id.rsplit("-", 1)[1])
    entry = {"sample_index": index, "completion_index": 0, "question": example.question,
             "answer": example.answer, "reasoning_completion": "Add them up.",
             "prompt": "Q: ...", "completion": f" {example.answer}."}
    second = {**entry, "completion_index": 1, "completion": " 0."}
    path = tmp_path / "D_multiarith.json"
    path.write_text(json.dumps({"metadata": {"dataset_key": "multiarith", "base_model": "m",
                                             "completion_key": "zs_cot"},
                                "data": {str(index): [entry, second]}}))
    records, stats = replay(multiarith, path, samples=2, match="sample_index")
    assert [(r.id, r.sample, r.correct) for r in records] == [
        (example.id, 0, True), (example.id, 1, False)]
    records, stats = replay(multiarith, path, samples=1, match="sample_index")
    assert len(records) == 1 and stats.beyond_samples == 1


def test_no_file_for_the_datasets_is_a_clear_error(multiarith, tmp_path):
    with pytest.raises(CotdistillError, match="no completion file"):
        replay(multiarith, tmp_path, samples=1, match="question")
    with pytest.raises(CotdistillError, match="not found"):
        replay(multiarith, tmp_path / "nowhere", samples=1, match="question")


def test_the_backend_replays_kojimas_logs_by_default_and_completion_files_when_asked(
        multiarith, tmp_path):
    from cotdistill.params import TeacherParams
    from cotdistill.teachers.registry import make_backend

    files = FileSource(SHARED / "mirror", tmp_path / "cache", download=False)
    logs = make_backend(TeacherParams(backend="replay", samples=1, temperature=0.0))
    assert not logs.asks_model and logs.model == "text-davinci-002"
    from_logs, report = logs.replay(multiarith, files)
    assert report["source"] == "kojima_logs" and report["imported"] == len(multiarith)
    converted = make_backend(TeacherParams(backend="replay", replay_source="completion_dataset",
                                           replay_path=str(COMPLETIONS), samples=1,
                                           temperature=0.0))
    from_files, report = converted.replay(multiarith, files)
    assert report["source"] == "completion_dataset" and report["questions_without_entry"] == 0
    # the shared converted files were made from the same logs: the same rationales and answers
    assert [(r.id, r.rationale, r.correct) for r in from_logs] == [
        (r.id, r.rationale, r.correct) for r in from_files]


def test_replay_params_name_the_source_that_needs_a_path():
    from cotdistill.params import TeacherParams

    with pytest.raises(ValueError, match="needs teacher.replay_path for replay_source"):
        TeacherParams(backend="replay", replay_source="completion_dataset", samples=1,
                      temperature=0.0)
    with pytest.raises(ValueError, match="replay_path is for replay_source completion_dataset"):
        TeacherParams(backend="replay", replay_path="x", samples=1, temperature=0.0)
