"""The teacher cache key of fixed requests never changes: paid-for cache entries stay valid.

Pinned before the package layout changed (issue 11). A change here means every cached teacher
response (and every dollar behind it) would be asked for again: do not update these values
unless that is the intent, and say so in the changelog.
"""

from __future__ import annotations

from cotdistill import prompts
from cotdistill.methods.new_fine_tune_cot.fewshot_teacher import (
    fewshot_prompt,
    shots_id,
)
from cotdistill.params import TeacherParams
from cotdistill.records import ClusteredExemplar
from cotdistill.teachers.engine import answer_step, rationale_step, request_key
from cotdistill.teachers.openai import OpenAIBackend
from cotdistill.teachers.transformers import TransformersBackend

# explicit, so that a change of the params defaults does not move the pins
SAMPLING = {"samples": 2, "temperature": 0.7, "seed": 0, "max_rationale_tokens": 64,
            "max_answer_tokens": 8}
QUESTION = "A coin is heads up. Ann flips the coin. Is the coin still heads up?"


def test_the_in_process_teachers_keys_are_pinned():
    params = TeacherParams(**SAMPLING)
    backend = TransformersBackend(params.model, params.batch_size)
    rationale = request_key(backend, prompts.reasoning_prompt(QUESTION), 1, rationale_step(params))
    answer = request_key(backend, prompts.answer_prompt(QUESTION, "It flips once.", "yes_no", None),
                         1, answer_step(params))
    assert (rationale, answer) == (PINNED["transformers_rationale"], PINNED["transformers_answer"])


def test_the_in_process_teachers_key_with_logprobs_is_pinned():
    params = TeacherParams(top_logprobs=5, **SAMPLING)
    backend = TransformersBackend(params.model, params.batch_size, params.top_logprobs)
    key = request_key(backend, prompts.reasoning_prompt(QUESTION), 0, rationale_step(params))
    assert key == PINNED["transformers_logprobs"]


def test_the_openai_teachers_keys_are_pinned():
    params = TeacherParams(backend="openai", model="gpt-4o-mini", api="completions",
                           base_url="http://127.0.0.1:8000/v1", **SAMPLING)
    backend = OpenAIBackend(params)
    key = request_key(backend, prompts.reasoning_prompt(QUESTION), 0, rationale_step(params))
    assert key == PINNED["openai_rationale"]


def test_the_few_shot_teachers_prompt_and_key_are_pinned():
    shots = [ClusteredExemplar(dataset="coin_flip", cluster=0, rank=0, distance=0.5, id="coin_flip-00001",
                      source="coin_flip-00001#0", question="A coin is tails up. "
                      "Bo flips the coin. Is the coin still tails up?",
                      rationale="Bo flips it once, so it is heads up.", answer="no")]
    params = TeacherParams(**SAMPLING)
    backend = TransformersBackend(params.model, params.batch_size)
    prompt = fewshot_prompt(QUESTION, shots)
    key = request_key(backend, prompt, 0, rationale_step(params))
    assert (shots_id(shots), key) == (PINNED["fewshot_id"], PINNED["fewshot_rationale"])


PINNED = {
    "transformers_rationale": "8bbca2fe1e984d79993a5ff40db817727970cea7a35c4ed2ac5dbf4d1ad56e50",
    "transformers_answer": "8398bf980892269eab9ba90e5d930ea49223c5206f762ec015feebe86a223a8a",
    "transformers_logprobs": "7a6cc016cd9ea0edc48a2ff2f0fa5e762985704645e8b812bae90c695c5efcfc",
    "openai_rationale": "932181fec0875863c8159be2c6321cc18555a23b14597e36cb96e99bba05ed66",
    "fewshot_id": "fs_cot@f68685d9+b2fe491e",
    "fewshot_rationale": "e145cb4fa60a6d7f189ab844c8d26a04aedea12c58a0db39b998c5b98c7b9480",
}
