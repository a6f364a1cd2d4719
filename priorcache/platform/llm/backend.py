"""The interface every LLM scoring backend implements: candidate log-likelihoods and greedy text.

A backend is built around one fixed prompt prefix (the template's instructions and examples);
each call only supplies the per-state prompt that follows it, so backends can keep the
prefix's computation and pay for it once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np

NORMALISATIONS = ("mean", "sum")


class ModelFileError(ValueError):
    """The configured model file is missing or not in a format the backend reads."""


class BackendNotInstalledError(ImportError):
    """The library of the configured backend is not installed in the replica's Python."""


class ScoringBackend(ABC):
    """Scores candidate continuations of `prefix + prompt` with a language model."""

    model_id: str
    """Stable id of the model weights; cached priors are only reused under the same id."""

    @abstractmethod
    def score(self, prompts: Sequence[str], candidate_lists: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Log-likelihood of each candidate as the continuation of `prefix + prompts[i]`.

        Returns one float64 array per prompt, with one entry per candidate of
        `candidate_lists[i]`, in order. The entry is length-normalised as the backend's
        `normalisation` says:
        - "mean" (default): the mean log-probability per candidate token. Measured best for
          action priors, because with summed log-probabilities the shortest command always wins.
        - "sum": the summed log-probability of the candidate's tokens, log p(candidate | context).
        """

    @abstractmethod
    def generate(self, prompt: str, max_tokens: int = 32, stop: Sequence[str] = ("\n",)) -> str:
        """Greedy continuation of `prefix + prompt`: at most `max_tokens` tokens, cut before the
        first occurrence of any `stop` string (which is not included)."""

    @abstractmethod
    def generate_distinct(self, prompt: str, n: int, max_tokens: int = 32, stop: Sequence[str] = ("\n",)) -> list[str]:
        """`n` continuations that start with different tokens: for each of the `n` likeliest first
        tokens, in order, the greedy continuation after it (as `generate` cuts it). The first is
        `generate`'s; later ones may still coincide once cut at `stop`."""
