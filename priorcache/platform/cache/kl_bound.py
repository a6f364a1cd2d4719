"""A paper-style bound on the prior error the cache serves, checked against the KL audit.

The paper bounds KL(cached || true) by a visitation-weighted sum over states of the prior
error of the entry each state was served from, an error that grows with the embedding
distance d = 1 - cosine similarity. Here the per-state error is taken as L * d, with L the
`quantile` of audited KL / d, and the visitation is the empirical one of the window's hits:

    bound = L * (sum of d over the window's semantic hits) / (all hits of the window)

is the expected KL per hit (exact hits have d = 0 and cost 0). L comes from the audits of
*earlier* windows only, so a window's bound is a prediction that its own audits then check
(`measured_kl_per_hit`, on the same per-hit scale). Pure numpy: no Ray, no cache access.
Documented in docs/cache.md.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

MIN_DISTANCE = 1e-6
"""Audits closer than this carry no slope information: float32 cosines of identical unit
vectors land within ~1e-7 of 1, and the KL measured there is scoring noise."""


class KLBoundEstimator:
    """bound(window) = L * (sum of d over the window's semantic hits) / (all hits in the window).

    That is the expected KL per hit under the empirical visitation of hits (exact hits cost 0),
    with L the `quantile` of audited KL / d over audits from earlier windows only, so the bound
    for a window is a prediction, checked against that window's own audits.
    """

    def __init__(self, quantile: float = 0.95, min_audits: int = 5) -> None:
        if not 0.0 <= quantile <= 1.0:
            raise ValueError(f"KL bound quantile must be in [0, 1], got {quantile}")
        if min_audits < 1:
            raise ValueError(f"KL bound min_audits must be >= 1, got {min_audits}")
        self._quantile = quantile
        self._min_audits = min_audits
        self._calibration: list[float] = []
        self._window: list[float] = []

    def add_audits(self, kls: Sequence[float], similarities: Sequence[float]) -> None:
        """Record this window's audits (KL and cosine similarity of each); used from `end_window`."""
        if len(kls) != len(similarities):
            raise ValueError(f"{len(kls)} audit KLs but {len(similarities)} similarities: give one of each per audit")
        kl = np.asarray(kls, dtype=np.float64)
        distance = 1.0 - np.asarray(similarities, dtype=np.float64)
        usable = np.isfinite(kl) & (distance >= MIN_DISTANCE)
        self._window.extend((kl[usable] / distance[usable]).tolist())

    def end_window(self) -> None:
        """Move this window's audits into the calibration set of later windows."""
        self._calibration.extend(self._window)
        self._window = []

    @property
    def lipschitz(self) -> float | None:
        """L: the `quantile` of KL / d over earlier windows' audits; None with too few audits."""
        if len(self._calibration) < self._min_audits:
            return None
        return float(np.quantile(self._calibration, self._quantile))

    def bound(self, semantic_distance_sum: float, hits: int) -> float | None:
        """Predicted KL per hit of a window; 0.0 without hits, None until L is calibrated."""
        if semantic_distance_sum < 0 or hits < 0:
            raise ValueError(f"need a distance sum >= 0 and hits >= 0, got {semantic_distance_sum} and {hits}")
        if hits == 0:
            return 0.0
        lipschitz = self.lipschitz
        return None if lipschitz is None else kl_bound(lipschitz, semantic_distance_sum, hits)


def kl_bound(lipschitz: float, semantic_distance_sum: float, hits: int) -> float:
    """L * (sum of d over a window's semantic hits) / (the window's hits); 0 without hits.

    The training driver calls this directly with L from the previous iteration's audits
    (RLlib aggregates per-audit ratios into percentiles, not lists, across env runners).
    """
    return lipschitz * semantic_distance_sum / hits if hits else 0.0


def measured_kl_per_hit(kl_semantic_mean: float, semantic_hits: int, hits: int) -> float:
    """Audited KL per hit: the semantic share of hits times the mean KL of audited semantic hits."""
    if not 0 <= semantic_hits <= hits:
        raise ValueError(f"need 0 <= semantic hits <= hits, got {semantic_hits} and {hits}")
    if semantic_hits == 0:
        return 0.0
    return semantic_hits / hits * kl_semantic_mean
