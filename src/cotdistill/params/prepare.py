"""The ``prepare`` section: which datasets, and how they are split."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from cotdistill.params.base import Section, check_known_datasets


class PrepareParams(Section):
    datasets: list[str] = Field(
        ["coin_flip_generated", "last_letter_concatenation_generated"],
        description="Datasets to prepare, by registry name (cotdistill.datasets); each at most "
                    "once.")
    seed: int = Field(
        0, description="Seed of the validation carve-out, and of the generation and the splits "
                       "of generated datasets.")
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
        description="Generated datasets: share of the examples that forms the test split.")

    @field_validator("datasets")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        if not names:
            raise ValueError("at least one dataset is needed")
        check_known_datasets(names)
        if len(set(names)) != len(names):
            raise ValueError("a dataset is listed twice")
        return names

    @model_validator(mode="after")
    def _room_for_train(self) -> PrepareParams:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must leave room for train")
        return self
