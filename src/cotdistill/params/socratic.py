"""The ``socratic`` section of ``params.yaml``: Socratic CoT's decompose, train and evaluate stages.

It belongs to one method, so it has its own module; :class:`cotdistill.params.Params` holds it as
``socratic``. Training reuses :class:`~cotdistill.params.train.HParams`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from cotdistill.errors import CotdistillError
from cotdistill.params.base import Section
from cotdistill.params.teacher import TeacherParams
from cotdistill.params.train import HParams

# socratic.hparams.max_length, whether socratic.hparams is left out or given in part: a
# decomposition's sub-question and sub-answer pairs make longer examples than train's
MAX_LENGTH = 256


class SocraticParams(Section):
    datasets: list[str] | None = Field(
        None,
        description="Prepared datasets to decompose, train on and evaluate (null: every prepared "
                    "dataset); gold decompositions exist for gsm8k only (GSM8K's socratic files).")
    teacher: TeacherParams | None = Field(
        None,
        description="The teacher that writes the decompositions (null: the teacher section). "
                    "Decompositions need a model to ask: with teacher.backend replay, name a live "
                    "one here (the report then says the two teachers differ).")
    qg_student: str = Field(
        "smollm2-135m",
        description="The question generator: a name from the students section (it may differ "
                    "from the QA student in size and architecture).")
    qa_student: str = Field(
        "smollm2-135m",
        description="The sub-question solver: a name from the students section; the unified "
                    "model and the reports/eval/<student>/socratic row are this student's.")
    unified: bool = Field(
        False,
        description="Also train and evaluate one model that writes sub-questions and answers in "
                    "turn (`socratic-train --role unified` and `socratic-evaluate --unified` "
                    "refuse otherwise).")
    max_steps: int = Field(
        8, gt=0, description="Loop limit: most (sub-question, sub-answer) pairs per problem.")
    max_examples: Annotated[int, Field(gt=0)] | None = Field(
        20,
        description="Test questions per dataset for the loop (null: all); the loop makes "
                    "2 x max_steps generation passes, so it is capped apart from "
                    "evaluate.max_examples.")
    source: Literal["teacher", "gold", "both"] = Field(
        "both",
        description="Where training decompositions come from: the teacher's, GSM8K's gold ones, "
                    "or both.")
    # --- decompose (teacher backend and model from the `teacher` section) --------------------
    exemplars: int = Field(
        3, gt=0, description="Few-shot exemplars in the teacher's decomposition prompt.")
    exemplars_path: str | None = Field(
        None,
        description="A JSON Lines file of {question, pairs: [[sub-question, sub-answer], ...], "
                    "answer} for the decomposition prompt (null: the built-in GSM8K train "
                    "exemplars, cotdistill.methods.socratic.decompositions.EXEMPLARS).")
    samples: int = Field(1, gt=0, description="Teacher decompositions per question.")
    temperature: float = Field(
        0.0, ge=0,
        description="Sampling temperature of the decompositions; 0 means greedy (then samples "
                    "must be 1).")
    max_tokens: int = Field(
        256, gt=0, description="Most tokens of one teacher decomposition.")
    max_questions: Annotated[int, Field(gt=0)] | None = Field(
        None, description="Train questions per dataset to decompose (null: all).")
    # --- inference ----------------------------------------------------------------------------
    max_subquestion_tokens: int = Field(
        48, gt=0, description="Most tokens the QG student generates per sub-question.")
    max_subanswer_tokens: int = Field(
        64, gt=0, description="Most tokens the QA student generates per sub-answer.")
    # --- training (one set for QG, QA and unified) --------------------------------------------
    hparams: HParams = Field(
        HParams(max_length=MAX_LENGTH),
        description=f"Training hyper-parameters of the QG, QA and unified students, as "
                    f"train.hparams, except max_length (default {MAX_LENGTH}).")

    @field_validator("hparams", mode="before")
    @classmethod
    def _own_max_length(cls, value: Any) -> Any:
        # a mapping without max_length gets socratic's, not HParams' (what the default has)
        if isinstance(value, dict) and "max_length" not in value:
            return {**value, "max_length": MAX_LENGTH}
        return value

    @field_validator("datasets")
    @classmethod
    def _known(cls, names: list[str] | None) -> list[str] | None:
        if names is None:
            return names
        if not names:
            raise ValueError("at least one dataset, or null for every prepared dataset")
        return names  # built-in, or a user dataset of prepare.datasets (Params checks)

    def student_for(self, role: str) -> str:
        """The student a role is trained as when none is named: the QG's for qg, else the QA's."""
        return self.qg_student if role == "qg" else self.qa_student

    def require_unified(self) -> None:
        """The unified model is part of an experiment only when params say so (and so the
        report and the DVC stages agree with what was trained)."""
        if not self.unified:
            raise CotdistillError("socratic.unified is false: set it to true to train or "
                                  "evaluate the unified model")

    @model_validator(mode="after")
    def _greedy_is_single(self) -> SocraticParams:
        if self.temperature == 0 and self.samples > 1:
            raise ValueError("temperature 0 (greedy) gives identical samples: set samples to 1")
        return self
