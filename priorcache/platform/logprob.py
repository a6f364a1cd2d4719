"""Log-probability arithmetic shared by the LLM replicas, the cache and the prior client."""

from __future__ import annotations

import numpy as np


def log_softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Normalised log-probabilities of `scores / temperature`."""
    z = np.asarray(scores, dtype=np.float64) / temperature
    z = z - z.max()
    return z - np.log(np.exp(z).sum())
