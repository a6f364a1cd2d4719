"""The KL audit: what a cache hit costs in prior quality, measured off the hot path.

A random fraction of *semantic* hits (a neighbour's prior served for a different state text)
is re-scored by the LLM in the background; when the fresh prior arrives, KL(cached || fresh)
is recorded. Exact hits are not audited: same text, model, prompt and candidates give the
same scores, so their KL is 0 by construction. The caller never waits for an audit, at most
`max_inflight` audits are pending per process, and the LLM pool serves audits only when no
real miss waits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import numpy as np
import ray

from priorcache.platform.cache.core import Guard


def kl_divergence(p_logp: np.ndarray, q_logp: np.ndarray) -> float:
    """KL(p || q) for two log-probability vectors over the same candidates."""
    p_logp = np.asarray(p_logp, dtype=np.float64)
    return float(np.sum(np.exp(p_logp) * (p_logp - np.asarray(q_logp, dtype=np.float64))))


@dataclass(frozen=True)
class AuditResult:
    """One audited hit."""

    kl: float
    """KL(cached prior || fresh prior), nats."""
    similarity: float
    """Cosine similarity of the hit."""
    entry: str = ""
    """Text hash of the cache entry that served the hit."""
    guard: Guard | None = None
    """Guard of the request (with `entry`, identifies the entry for per-entry thresholds)."""
    flip: bool = False
    """The cached prior's most likely action differs from the fresh prior's."""


class HitAuditor:
    """Samples hits to audit, tracks the pending re-scorings, yields finished audits."""

    def __init__(self, rate: float, max_inflight: int, seed: int | None = None) -> None:
        self._rate = rate
        self._max_inflight = max_inflight
        self._rng = random.Random(seed)
        self._pending: dict[ray.ObjectRef, tuple[np.ndarray, float, str, Guard | None]] = {}

    def maybe_audit(self, rescore: Callable[[], ray.ObjectRef], cached_logp: np.ndarray,
                    similarity: float, entry: str = "", guard: Guard | None = None) -> None:
        """With probability `rate` (and room in flight), start re-scoring this semantic hit."""
        if len(self._pending) >= self._max_inflight or self._rng.random() >= self._rate:
            return
        self._pending[rescore()] = (cached_logp, similarity, entry, guard)

    def collect(self, wait_s: float = 0.0) -> list[AuditResult]:
        """Audits whose fresh prior has arrived since the last call, waiting at most `wait_s`
        for all pending ones (0 never blocks: the hot path's call)."""
        if not self._pending:
            return []
        ready, _ = ray.wait(list(self._pending), num_returns=len(self._pending), timeout=wait_s)
        results = []
        for ref in ready:
            cached_logp, similarity, entry, guard = self._pending.pop(ref)
            try:
                fresh = ray.get(ref)
            except ray.exceptions.RayError:
                continue  # a failed audit measures nothing; the run goes on
            flip = int(np.argmax(cached_logp)) != int(np.argmax(fresh))
            results.append(AuditResult(kl_divergence(cached_logp, fresh), similarity, entry, guard, flip))
        return results
