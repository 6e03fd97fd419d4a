"""Token-level KD from the top-k log-probabilities the teacher stage stored (seed 002).

The teacher is real: `cotdistill serve` over a tiny model on loopback, asked through the
openai backend with ``teacher.top_logprobs``. Its completions go through curate and into
training, as in the pipeline. The tiny teacher answers almost nothing right, so the tests
take its completions as right answers: what is under test is how its tokens travel.
"""

from __future__ import annotations

import pytest
import torch

from cotdistill.curation.select import curate
from cotdistill.errors import CotdistillError
from cotdistill.params import CurateParams, HParams, KDParams, TeacherParams
from cotdistill.records import PreparedExample, TeacherCompletion
from cotdistill.serve import running_server
from cotdistill.student.data import MISSING
from cotdistill.student.kd import StudentVocabulary, align, place, teacher_tokens
from cotdistill.student.losses import (
    distillation_loss,
    sparse_token_kl,
    token_cross_entropy,
    token_kl,
)
from cotdistill.student.training import train_student
from cotdistill.teachers.registry import make_backend
from cotdistill.teachers.zero_shot_cot import run_teacher

QUESTIONS = [
    PreparedExample(id=f"coin_flip-{i:05d}", dataset="coin_flip", split="train",
                    question=f"A coin is heads up. Person{i} flips the coin. Person{i + 1} does "
                             "not flip the coin. Is the coin still heads up?",
                    answer="no", answer_type="yes_no")
    for i in range(4)
]
STORED = KDParams(source="logprobs", weight=0.5)


def ask_teacher(model, cache, api: str = "completions") -> list[TeacherCompletion]:
    """Completions with top-5 log-probabilities from a served model, taken as right answers."""
    with running_server(str(model), max_batch=8, batch_window_s=0.01) as url:
        params = TeacherParams(backend="openai", base_url=url, model=str(model), api=api,
                               samples=2, temperature=0.8, max_rationale_tokens=24,
                               max_answer_tokens=4, top_logprobs=5, timeout_s=30)
        records, _ = run_teacher(QUESTIONS, params, make_backend(params), cache)
    return [r.model_copy(update={"correct": True, "prediction": "no"}) for r in records]


def curated(records: list[TeacherCompletion], method: str = "fine_tune_cot"):
    return curate(QUESTIONS, records, CurateParams())[method]


@pytest.fixture(scope="module")
def shared_teacher(tiny_model, tmp_path_factory) -> list[TeacherCompletion]:
    return ask_teacher(tiny_model, tmp_path_factory.mktemp("teacher") / "cache.sqlite")


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_the_teacher_stage_stores_the_generated_tokens_with_their_top_k(
        tiny_model, tmp_path, api):
    records = ask_teacher(tiny_model, tmp_path / "cache.sqlite", api)
    for record in records:
        assert record.tokens is not None and len(record.tokens) == len(record.top_logprobs)
        placed = place(record.tokens, record.rationale)
        assert placed and all(record.rationale[max(start, 0):].startswith(
            record.tokens[j][max(-start, 0):]) for j, start in placed)


def test_the_in_process_teacher_stores_the_same_kind_of_top_k(tiny_model, tmp_path):
    params = TeacherParams(backend="transformers", model=str(tiny_model), samples=1,
                           temperature=0.8, max_rationale_tokens=12, max_answer_tokens=4,
                           top_logprobs=3)
    records, _ = run_teacher(QUESTIONS, params, make_backend(params), tmp_path / "c.sqlite")
    for record in records:
        assert record.tokens and len(record.tokens) == len(record.top_logprobs)
        assert all(1 <= len(top) <= 3 and all(lp <= 0 for lp in top.values())
                   for top in record.top_logprobs)
        assert place(record.tokens, record.rationale)
    # the same requests without logprobs are other cache entries, not served these
    plain = params.model_copy(update={"top_logprobs": None})
    again, stats = run_teacher(QUESTIONS, plain, make_backend(plain), tmp_path / "c.sqlite")
    assert stats.generated > 0 and all(r.tokens is None for r in again)


def test_curate_keeps_the_teacher_tokens_over_each_rationale(shared_teacher):
    rows = curated(shared_teacher)
    assert rows and all(row.teacher_tokens is not None for row in rows)
    by_source = {f"{r.id}#{r.sample}": r for r in shared_teacher}
    for row in rows:
        stored = row.teacher_tokens
        rationale = by_source[row.source].rationale
        begins = row.target.find(rationale)
        assert len(stored.starts) == len(stored.tokens) == len(stored.top_logprobs)
        assert stored.starts == sorted(stored.starts) and stored.starts[0] >= begins - 1
        for start, token in zip(stored.starts, stored.tokens):
            assert row.target[start:start + len(token)] == token  # each token where it stands
    answer_only = curated(shared_teacher, "answer_only")
    assert all(row.teacher_tokens is None for row in answer_only)


def test_a_shared_tokenizer_lines_up_the_rationale_tokens(shared_teacher, tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    vocabulary = StudentVocabulary.of(tokenizer)
    aligned = total = 0
    for row in curated(shared_teacher):
        stored = row.teacher_tokens
        ids = tokenizer(row.target, add_special_tokens=False)["input_ids"]
        result = align(tokenizer, vocabulary, row.target, ids, stored)
        assert result.teacher_tokens == len(stored.tokens)
        aligned, total = aligned + result.aligned, total + result.teacher_tokens
        texts = {text for top in stored.top_logprobs for text in top}
        for index, token_ids, logprobs in result.positions:
            assert tokenizer.decode([ids[index]]) in stored.tokens
            assert len(token_ids) == len(logprobs) <= 5 and all(lp <= 0 for lp in logprobs)
            alternatives = tokenizer.batch_decode([[i] for i in token_ids],
                                                  clean_up_tokenization_spaces=False)
            assert set(alternatives) <= texts
    # a random tiny teacher writes some non-canonical token sequences; SmolLM2 lines up 99%
    assert aligned >= 0.9 * total


def test_training_with_stored_distributions_moves_the_student_towards_the_teacher(
        shared_teacher, tiny_model, tmp_path):
    rows = curated(shared_teacher)
    only_kd = KDParams(source="logprobs", weight=1.0)
    hparams = HParams(max_steps=12, learning_rate=3e-3, batch_size=len(rows), kd=only_kd)
    result = train_student(rows, str(tiny_model), "k", hparams, tmp_path / "student",
                           use_deepspeed=False)
    assert result.kd["kd_aligned_share"] >= 0.9 and result.kd["kd_positions"] > 0
    assert result.kd["kd_examples"] == len(rows)
    # with weight 1 the loss is the KL to the teacher's top-k: it must fall
    assert result.final_loss < 0.8 * result.first_loss


def test_stored_distributions_train_under_deepspeed_too(shared_teacher, tiny_model, tmp_path):
    rows = curated(shared_teacher)
    hparams = HParams(max_steps=4, learning_rate=3e-3, batch_size=len(rows), deepspeed="on",
                      kd=KDParams(source="logprobs", weight=1.0))
    result = train_student(rows, str(tiny_model), "k", hparams, tmp_path / "student",
                           use_deepspeed=True)
    assert result.engine == "DeepSpeedEngine" and result.steps == 4
    assert result.kd["kd_positions"] > 0 and result.final_loss < result.first_loss


def test_stored_distributions_change_the_loss_and_answer_only_ignores_them(
        shared_teacher, tiny_model, tmp_path):
    rows = curated(shared_teacher)
    plain = train_student(rows, str(tiny_model), "k", HParams(max_steps=1, batch_size=4),
                          tmp_path / "plain", use_deepspeed=False)
    with_kd = train_student(rows, str(tiny_model), "k", HParams(max_steps=1, batch_size=4,
                            kd=STORED), tmp_path / "kd", use_deepspeed=False)
    assert with_kd.first_loss != pytest.approx(plain.first_loss)
    answer_only = curated(shared_teacher, "answer_only")
    result = train_student(answer_only, str(tiny_model), "k",
                           HParams(max_steps=1, batch_size=4, kd=STORED), tmp_path / "ao",
                           use_deepspeed=False)
    assert result.steps == 1 and result.kd == {}


def test_a_rationale_method_without_stored_distributions_is_refused(shared_teacher,
                                                                    tiny_model, tmp_path):
    bare = [r.model_copy(update={"tokens": None, "top_logprobs": None}) for r in shared_teacher]
    with pytest.raises(CotdistillError, match="teacher.top_logprobs"):
        train_student(curated(bare), str(tiny_model), "k", HParams(max_steps=1, kd=STORED),
                      tmp_path / "out", use_deepspeed=False)


@pytest.fixture(scope="module")
def other_teacher(tmp_path_factory) -> list[TeacherCompletion]:
    """Completions of a served teacher whose tokenizer is not the student's (a BPE trained on
    other text, another vocabulary size)."""
    from cotdistill_testkit.tiny_model import build_tiny_model

    german = ["Der schnelle braune Fuchs springt über den faulen Hund. Zwölf Boxkämpfer jagen "
              "Viktor quer über den großen Sylter Deich. A coin is heads up."] * 20
    root = tmp_path_factory.mktemp("other")
    other = build_tiny_model(root / "model", corpus=german, vocab_size=400, seed=2)
    return ask_teacher(other, root / "cache.sqlite")


def test_a_teacher_with_another_tokenizer_teaches_through_its_projected_candidates(
        other_teacher, tiny_model, tmp_path):
    """Its candidates are projected onto the student's vocabulary, the loss (KL only) falls."""
    rows = [row for row in curated(other_teacher) if row.teacher_tokens is not None]
    assert rows
    hparams = HParams(max_steps=12, learning_rate=3e-3, batch_size=len(rows),
                      kd=KDParams(source="logprobs", weight=1.0))
    result = train_student(rows, str(tiny_model), "k", hparams, tmp_path / "student",
                           use_deepspeed=False)
    assert result.kd["kd_positions"] > 0
    assert 0.25 <= result.kd["kd_aligned_share"] < 1.0
    assert result.kd["kd_projected_share"] > 0  # some candidates are no token of the student's
    assert result.final_loss < 0.8 * result.first_loss


def test_a_candidate_that_is_no_student_token_gives_its_mass_to_its_first_piece(tiny_model):
    from transformers import AutoTokenizer

    from cotdistill.records import TeacherTokens

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    vocabulary = StudentVocabulary.of(tokenizer)
    target = " The coin is heads up."
    ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    first = tokenizer.convert_ids_to_tokens(ids)  # the student's own pieces
    word = tokenizer.decode([ids[0]])  # the student's first token, " The" or a piece of it
    unknown = word + "zzqx"  # no token of the student's: projected onto its first piece
    stored = TeacherTokens(starts=[0], tokens=[word],
                           top_logprobs=[{word: -0.5, unknown: -1.5, " A": -2.0}])
    result = align(tokenizer, vocabulary, target, ids, stored)
    assert result.aligned == 1 and first
    [(index, student_ids, logprobs)] = result.positions
    mass = dict(zip(student_ids, logprobs))
    first_of_unknown = tokenizer(unknown, add_special_tokens=False)["input_ids"][0]
    assert index == 0 and first_of_unknown in mass
    if first_of_unknown == ids[0]:  # both land on the student's token: their mass adds up
        assert mass[ids[0]] == pytest.approx(float(torch.logaddexp(
            torch.tensor(-0.5), torch.tensor(-1.5))))
    assert result.projected >= 1


def test_a_teacher_whose_tokens_do_not_line_up_is_refused_in_one_line(tiny_model, tmp_path):
    """One character per teacher token: too few start where a student token starts with it."""
    from cotdistill.records import CuratedExample, TeacherTokens

    target = " It is flipped once, so the coin is tails up. --> no"
    chars = list(target[:-7])
    stored = TeacherTokens(starts=list(range(len(chars))), tokens=chars,
                           top_logprobs=[{c: -0.1} for c in chars])
    rows = [CuratedExample(id="q", dataset="coin_flip", method="fine_tune_cot", source="q#0",
                           input="A coin is heads up. ###", target=target,
                           teacher_tokens=stored)] * 2
    with pytest.raises(CotdistillError, match=r"only \d+% of the teacher's stored tokens line up"):
        train_student(rows, str(tiny_model), "k", HParams(max_steps=1, kd=STORED),
                      tmp_path / "out", use_deepspeed=False)


def test_tokens_are_placed_over_the_rationale_they_spell():
    record = TeacherCompletion(
        id="q", dataset="coin_flip", sample=0, backend="openai", model="m", prompt_id="p",
        sampling={}, rationale="It is flipped once.", answer_text="no", prediction="no",
        correct=True, top_logprobs=[{"bytes:\\xe2": -0.1}, {" flipped": -0.2}],
        tokens=["bytes:\\xe2", " flipped"])
    assert teacher_tokens(record, " It is flipped once. --> no") is None  # no first word
    spelled = record.model_copy(update={
        "tokens": ["\n", " It", " is", " fl", "\ufffd", "\ufffd", "ped", " once", ".", "\n\n"],
        "top_logprobs": [{"x": -1.0}] * 10})
    stored = teacher_tokens(spelled, " It is flipped once. --> no")
    # the whitespace before it and the split character are left out; the rest is placed
    assert stored.tokens == [" It", " is", " fl", "ped", " once", "."]
    assert stored.starts == [0, 3, 6, 11, 14, 19]
    assert teacher_tokens(spelled, " no") is None  # an answer-only target
    special = spelled.model_copy(update={
        "tokens": [" It", " is", "<pad>", " flipped", " once", "."],
        "top_logprobs": [{"x": -1.0}] * 6})
    assert place(special.tokens, special.rationale) == [(0, -1), (1, 2), (3, 5), (4, 13),
                                                          (5, 18)]


# --- the sparse loss


def _stored(logprobs: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The top-k of each position's distribution, stored at the label's position (one later)."""
    values, ids = logprobs.topk(k, dim=-1)
    empty_ids, empty = torch.zeros_like(ids[:, :1]), torch.full_like(values[:, :1], MISSING)
    return torch.cat([empty_ids, ids[:, :-1]], dim=1), torch.cat([empty, values[:, :-1]], dim=1)


def test_sparse_kl_over_the_whole_vocabulary_equals_the_dense_kl():
    torch.manual_seed(0)
    batch, length, vocab = 2, 5, 11
    student, teacher = torch.randn(batch, length, vocab), torch.randn(batch, length, vocab)
    labels = torch.randint(0, vocab, (batch, length))
    ids, logprobs = _stored(torch.log_softmax(teacher, dim=-1), vocab)
    sparse, has = sparse_token_kl(student, ids, logprobs)
    assert has.all()
    assert torch.allclose(sparse, token_kl(student, teacher, labels, 1.0), atol=1e-5)


def test_sparse_kl_is_zero_for_a_student_identical_to_the_teacher_and_below_the_full_kl():
    torch.manual_seed(2)
    student, teacher = torch.randn(2, 6, 50), torch.randn(2, 6, 50)
    labels = torch.randint(0, 50, (2, 6))
    ids, logprobs = _stored(torch.log_softmax(teacher, dim=-1), 5)
    same, _ = sparse_token_kl(teacher, ids, logprobs)
    assert torch.allclose(same, torch.zeros_like(same), atol=1e-5)  # the tail is not charged
    other, _ = sparse_token_kl(student, ids, logprobs)
    full = token_kl(student, teacher, labels, 1.0)
    assert (other[:, 1:] > 0).all() and (other <= full + 1e-5).all()  # position 0: no teacher


def test_examples_without_a_stored_distribution_keep_plain_cross_entropy():
    torch.manual_seed(1)
    logits, labels = torch.randn(2, 4, 7), torch.randint(0, 7, (2, 4))
    ids = torch.zeros(2, 4, 3, dtype=torch.long)
    logprobs = torch.full((2, 4, 3), MISSING)
    loss = distillation_loss(logits, labels, kd_ids=ids, kd_logprobs=logprobs, kd_weight=0.5)
    assert loss.item() == pytest.approx(token_cross_entropy(logits, labels).mean().item())


def test_tokens_without_a_stored_distribution_keep_plain_cross_entropy_beside_ones_with_it():
    torch.manual_seed(1)
    student, teacher = torch.randn(1, 5, 7), torch.randn(1, 5, 7)
    labels = torch.randint(0, 7, (1, 5))
    ids, logprobs = _stored(torch.log_softmax(teacher, dim=-1), 7)
    logprobs[:, 3:] = MISSING  # the answer after "-->": no teacher distribution stored
    ce = token_cross_entropy(student, labels)
    kl = token_kl(student, teacher, labels, 1.0)
    loss = distillation_loss(student, labels, kd_ids=ids, kd_logprobs=logprobs, kd_weight=0.5)
    expected = (0.5 * ce[0, :2] + 0.5 * kl[0, :2]).sum() + ce[0, 2:].sum()
    assert loss.item() == pytest.approx((expected / 4).item(), rel=1e-4)


@pytest.mark.parametrize("settings, message", [
    ({"source": "model"}, "needs teacher"),
    ({"source": "logprobs", "teacher": "builtin:SmolLM2-135M-Instruct"}, "leave teacher out"),
])
def test_kd_params_name_where_the_teacher_distribution_comes_from(settings, message):
    with pytest.raises(ValueError, match=message):
        KDParams(**settings)
