"""cotdistill: chain-of-thought distillation as a reproducible DVC + MLflow pipeline."""

__version__ = "0.1.0"
