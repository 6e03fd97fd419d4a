"""The ``prepare`` section: which datasets (built-in or a team's own), how they are split, and
how training questions are decontaminated against test questions.

An entry of ``datasets`` is a built-in dataset's name (``gsm8k``), or a mapping. A mapping with
a source (``path`` or ``hub``) describes a user dataset; one without a source names a built-in
dataset and may give it prompts of its own. Prompts left out are today's defaults
(:mod:`cotdistill.prompts`), so a task changes only what it sets.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Literal

from pydantic import Field, field_validator, model_validator

from cotdistill.catalog import DATASETS
from cotdistill.params.base import Section, check_known_datasets
from cotdistill.prompts import TaskPrompts

# dataset names end up in example ids, metric names and MLflow keys
DATASET_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
FILE_FORMATS = ("jsonl", "json", "csv", "parquet")
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
            ".parquet": "parquet"}


class Exemplar(Section):
    question: str = Field(min_length=1, description="The worked example's question.")
    rationale: str = Field(min_length=1, description="Its step-by-step rationale.")
    answer: str = Field(min_length=1, description="Its answer, as the rationale concludes.")


class PromptParams(Section):
    """A task's prompts; each left out (null) is the default for its answer type."""

    reasoning: str | None = Field(
        None, description="Zero-shot-CoT step 1 with {question} (default: \"Q: {question}\\nA: "
                          "Let's think step by step.\").")
    answer_trigger: str | None = Field(
        None, description="Zero-shot-CoT step 2's trigger, after the rationale (default per "
                          "answer type, Kojima et al.'s: \"Therefore, the answer (arabic "
                          "numerals) is\"; {last}: the last choice letter).")
    student: str | None = Field(
        None, description="How the student sees a question, with {question}; the method adds "
                          "its own ' ###' (default: \"{question}\").")
    exemplars: list[Exemplar] | None = Field(
        None, description="Few-shot-CoT exemplars for this task, used instead of the clustered "
                          "ones of the exemplars stage (null: clustered).")

    @field_validator("reasoning", "student")
    @classmethod
    def _has_question(cls, template: str | None) -> str | None:
        if template is not None and "{question}" not in template:
            raise ValueError("the template must contain {question}")
        return template

    def resolve(self) -> TaskPrompts:
        """These prompts with every unset one at its default."""
        defaults = TaskPrompts()
        return TaskPrompts(
            reasoning=self.reasoning or defaults.reasoning,
            answer_trigger=self.answer_trigger,
            student=self.student or defaults.student,
            exemplars=tuple(e.model_dump() for e in self.exemplars) if self.exemplars else None,
        )


class DatasetEntry(Section):
    """A user dataset (with ``path`` or ``hub``), or a built-in one given its own prompts."""

    name: str = Field(
        description="The dataset's name: lower-case letters, digits and '_' (it names example "
                    "ids and metrics). Without a source, a built-in dataset's name.")
    path: str | None = Field(
        None, description="A local file: JSON Lines, JSON, CSV or Parquet, relative to the "
                          "repository (track it with `dvc add`, under data/raw/).")
    test_path: str | None = Field(
        None, description="path's own test split, a second file of the same format (null: a "
                          "seeded test_fraction of path).")
    format: Literal["jsonl", "json", "csv", "parquet"] | None = Field(
        None, description="The file format (null: from path's suffix).")
    hub: str | None = Field(
        None, description="A Hugging Face dataset id, loaded with `datasets` at revision.")
    revision: str | None = Field(
        None, description="hub: the commit (or tag) to load, so the data cannot change under "
                          "the pipeline.")
    config: str | None = Field(None, description="hub: the dataset's configuration name.")
    train_split: str = Field("train", description="hub: the split that is the training data.")
    test_split: str | None = Field(
        None, description="hub: the dataset's own test split (null: a seeded test_fraction of "
                          "train_split).")
    test_fraction: float | None = Field(
        None, gt=0, lt=1, description="Without an own test split: the share that forms test "
                                      "(null: prepare.test_fraction), drawn with prepare.seed.")
    question: str = Field("question", description="The field holding the question.")
    answer: str = Field("answer", description="The field holding the gold answer.")
    choices: str | list[str] | None = Field(
        None, description="choice tasks: a field holding the list of options, or a list of "
                          "fields, one option each (CSV columns).")
    id: str | None = Field(
        None, description="A field holding a unique id per row (a duplicate is an error; null: "
                          "the row number).")
    answer_type: Literal["number", "choice", "yes_no", "text"] | None = Field(
        None, description="number, choice (answer: a letter or an option's text), yes_no, or "
                          "text (free text: right when its words, lower-cased, open the "
                          "stated answer); required with a source.")
    prompts: PromptParams = Field(PromptParams(), description="This task's prompts.")
    decontamination: Literal["ngram", "exact"] | None = Field(
        None, description="ngram: drop training questions that repeat a test question or "
                          "share prepare.decontamination's share of n-grams with one; exact: "
                          "repeats only (for one-template datasets); null: ngram, except for "
                          "built-in one-template datasets (tracking_shuffled_objects and the "
                          "generated ones).")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not DATASET_NAME.match(name):
            raise ValueError(f"{name!r}: a dataset name is lower-case letters, digits and '_'")
        return name

    @property
    def by_ngrams(self) -> bool:
        """Whether near copies of test questions (by n-grams) are dropped, not only repeats."""
        if self.decontamination is not None:
            return self.decontamination == "ngram"
        return not (self.name in DATASETS and DATASETS[self.name].templated and not self.user)

    @property
    def user(self) -> bool:
        return self.path is not None or self.hub is not None

    @property
    def file_format(self) -> str:
        """The local file's format: ``format``, else its suffix's."""
        return self.format or SUFFIXES[PurePosixPath(self.path or "").suffix.lower()]

    @model_validator(mode="after")
    def _consistent(self) -> DatasetEntry:
        sources = [key for key in ("path", "hub") if getattr(self, key) is not None]
        if len(sources) == 2:
            raise ValueError("give path or hub, not both")
        if not sources:
            if self.name not in DATASETS:
                raise ValueError(f"dataset {self.name!r} has no source: give path (a local "
                                 f"file) or hub, or name a built-in dataset (known: "
                                 f"{', '.join(sorted(DATASETS))})")
            given = self.model_fields_set - {"name", "prompts", "decontamination"}
            if given:
                raise ValueError(f"{', '.join(sorted(given))}: only for a dataset with a source "
                                 f"(path or hub); {self.name} is built in")
            return self
        if self.name in DATASETS:
            raise ValueError(f"{self.name!r} is a built-in dataset's name; give yours another")
        if self.answer_type is None:
            raise ValueError("answer_type is required for a dataset with a source: number, "
                             "choice, yes_no or text")
        if (self.answer_type == "choice") != (self.choices is not None):
            raise ValueError("choices (a field, or a list of fields) is needed exactly when "
                             "answer_type is choice")
        for field in ("path", "test_path"):
            value = getattr(self, field)
            if value is not None and (PurePosixPath(value).is_absolute()
                                      or ".." in PurePosixPath(value).parts):
                raise ValueError(f"{field} {value!r}: give a path inside the repository (it "
                                 f"is a DVC-tracked input)")
        if self.path is not None:
            if self.format is None and PurePosixPath(self.path).suffix.lower() not in SUFFIXES:
                raise ValueError(f"path {self.path!r}: unknown suffix; set format to one of "
                                 f"{', '.join(FILE_FORMATS)}")
            hub_only = {"revision", "config", "train_split", "test_split"} & self.model_fields_set
            if hub_only:
                raise ValueError(f"{', '.join(sorted(hub_only))}: only for a hub dataset")
        else:
            if not self.revision:
                raise ValueError(f"hub {self.hub!r}: give revision (a commit), so the data "
                                 f"cannot change under the pipeline")
            if {"test_path", "format"} & self.model_fields_set:
                raise ValueError("test_path and format are only for a local path")
        own_test = self.test_path is not None or self.test_split is not None
        if own_test and self.test_fraction is not None:
            raise ValueError("the dataset has its own test split; leave test_fraction out")
        return self


class DecontaminationParams(Section):
    ngram: int = Field(
        8, gt=0, description="Words per n-gram when matching training questions against test "
                             "questions (open-r1 uses 8).")
    threshold: float = Field(
        0.5, gt=0, le=1,
        description="Drop a training question when this share of its n-grams occurs in one "
                    "test question (exact matches after normalisation are always dropped).")


class PrepareParams(Section):
    datasets: list[str | DatasetEntry] = Field(
        ["coin_flip_generated", "last_letter_concatenation_generated"],
        description="Datasets to prepare, each at most once: a built-in dataset's name "
                    "(cotdistill.datasets), or a mapping for a user dataset (name, path or "
                    "hub, fields, answer_type) or a built-in with prompts of its own.")
    seed: int = Field(
        0, description="Seed of the validation carve-out, and of the generation and the splits "
                       "of generated datasets and of user datasets without a test split.")
    val_fraction: float = Field(
        0.1, ge=0, lt=1,
        description="Share of each dataset's train split kept for validation (model selection; "
                    "never test).")
    mirror: str | None = Field(
        None,
        description="Published datasets: a local mirror of the raw files "
                    "(<mirror>/<owner>/<repo>/<path>); null: $COTDISTILL_DATA_MIRROR, else "
                    "download at the pinned revision into the cache.")
    num_examples: int = Field(
        500, gt=0, description="Generated datasets: examples per dataset (Kojima et al.: 500).")
    num_items: int = Field(
        4, gt=0,
        description="Generated datasets: N, the flips per question (Coin Flip) or the words per "
                    "question (Last Letter Concatenation).")
    test_fraction: float = Field(
        0.3, gt=0, lt=1,
        description="Generated datasets and user datasets without a test split: share of the "
                    "examples that forms the test split.")
    decontamination: DecontaminationParams = Field(
        DecontaminationParams(),
        description="Training questions that overlap a test question are dropped.")

    @field_validator("datasets")
    @classmethod
    def _known(cls, entries: list[str | DatasetEntry]) -> list[str | DatasetEntry]:
        if not entries:
            raise ValueError("at least one dataset is needed")
        check_known_datasets([e for e in entries if isinstance(e, str)])
        names = [e if isinstance(e, str) else e.name for e in entries]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"a dataset is listed twice: {', '.join(twice)}")
        return entries

    @model_validator(mode="after")
    def _room_for_train(self) -> PrepareParams:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must leave room for train")
        return self

    @property
    def entries(self) -> list[DatasetEntry]:
        """Every dataset as a mapping entry (a bare name is a built-in with default prompts)."""
        return [DatasetEntry(name=e) if isinstance(e, str) else e for e in self.datasets]

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def tasks(self) -> dict[str, TaskPrompts]:
        """Every dataset's prompts, by name (a dataset not listed has the defaults)."""
        return {entry.name: entry.prompts.resolve() for entry in self.entries}
