"""Log-probability arithmetic shared by the LLM replicas, the cache and the prior client."""

from __future__ import annotations

from typing import Callable

import numpy as np


def log_softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Normalised log-probabilities of `scores / temperature`."""
    z = np.asarray(scores, dtype=np.float64) / temperature
    z = z - z.max()
    return z - np.log(np.exp(z).sum())


def uniform_logp(n: int) -> np.ndarray:
    """log(1/n) for each of `n` candidates."""
    return np.full(n, -np.log(n))


FALLBACK_PRIORS: dict[str, Callable[[int], np.ndarray]] = {"uniform": uniform_logp}
"""Priors over n candidates for requests the LLM did not answer in time (`prior.llm.fallback`)."""
