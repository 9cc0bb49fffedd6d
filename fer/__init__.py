"""Facial-expression recognition stage: dataset readers, preparation, the FERNet-style model, training."""

from fer.labels import LABELS

__all__ = ["LABELS"]
