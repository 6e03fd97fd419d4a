"""The ``socratic`` section of ``params.yaml``: Socratic CoT's decompose, train and evaluate stages.

Kept out of :mod:`cotdistill.params` because it belongs to one method; ``params.Params`` holds
it as ``socratic``. It reuses :class:`~cotdistill.params.HParams` for training, which is why
``params.py`` imports this module only after ``HParams`` is defined.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Literal

if "cotdistill.params" not in sys.modules:
    # Imported before cotdistill.params: let params load first. It imports this module anew
    # part-way (HParams defined by then), and that copy is the one every importer receives.
    del sys.modules[__name__]
    importlib.import_module("cotdistill.params")

from pydantic import Field, field_validator, model_validator

from cotdistill.params import HParams, Section, check_known_datasets


class SocraticParams(Section):
    # prepared datasets to decompose, train on and evaluate (None: every prepared dataset);
    # gold decompositions exist for gsm8k only (GSM8K's socratic files)
    datasets: list[str] | None = None
    # students (names from the `students` section): the question generator and the
    # sub-question solver may differ in size and architecture; the unified model and the
    # reports/eval/<student>/socratic row are the QA student's
    qg_student: str = "smollm2-135m"
    qa_student: str = "smollm2-135m"
    # also train and evaluate one model that writes sub-questions and answers in turn
    # (`socratic-train --role unified` and `socratic-evaluate --unified` refuse otherwise)
    unified: bool = False
    max_steps: Annotated[int, Field(gt=0)] = 8  # most (sub-question, sub-answer) pairs per problem
    # test questions per dataset for the loop (None: all); the loop makes 2 x max_steps
    # generation passes, so it is capped apart from evaluate.max_examples
    max_examples: Annotated[int, Field(gt=0)] | None = 20
    # where training decompositions come from: the teacher's, GSM8K's gold ones, or both
    source: Literal["teacher", "gold", "both"] = "both"
    # --- decompose (teacher backend and model from the `teacher` section) --------------------
    exemplars: Annotated[int, Field(gt=0)] = 3  # few-shot exemplars in the decomposition prompt
    # a JSON Lines file of {question, pairs: [[sub-question, sub-answer], ...], answer}
    # (None: the built-in GSM8K train exemplars, cotdistill.methods.socratic.decompositions.EXEMPLARS)
    exemplars_path: str | None = None
    samples: Annotated[int, Field(gt=0)] = 1  # teacher decompositions per question
    temperature: Annotated[float, Field(ge=0)] = 0.0
    max_tokens: Annotated[int, Field(gt=0)] = 256  # per teacher decomposition
    max_questions: Annotated[int, Field(gt=0)] | None = None  # train questions per dataset
    # --- inference ----------------------------------------------------------------------------
    max_subquestion_tokens: Annotated[int, Field(gt=0)] = 48
    max_subanswer_tokens: Annotated[int, Field(gt=0)] = 64
    # --- training (one set for QG, QA and unified) --------------------------------------------
    hparams: HParams = HParams(max_length=256)

    @field_validator("datasets")
    @classmethod
    def _known(cls, names: list[str] | None) -> list[str] | None:
        if names is None:
            return names
        if not names:
            raise ValueError("at least one dataset, or null for every prepared dataset")
        check_known_datasets(names)
        return names

    @model_validator(mode="after")
    def _greedy_is_single(self) -> SocraticParams:
        if self.temperature == 0 and self.samples > 1:
            raise ValueError("temperature 0 (greedy) gives identical samples: set samples to 1")
        return self
