"""The online meta-optimizer of the cache parameters: one update per training window.

It maximises the hit rate subject to a budget on the prior error a hit costs,

    max_delta  hit_rate(delta)   s.t.   KL per semantic hit <= kl_budget,

by a Lagrangian (dual-ascent) surrogate-gradient rule. The hit rate only ever falls as the
threshold delta rises, so the objective always pushes delta down and the sign of the step is
decided by the constraint. Its normalised violation

    g = kl_semantic / kl_budget - 1

(only when the window finished at least `min_audits` audits; otherwise no KL-driven move)
drives every KL-dependent parameter through tanh(g), which bounds a step however noisy the
audits are:

- threshold (semantic mode): delta <- clip(delta + threshold_step * tanh(g) * s,
  min_threshold, max_threshold), rounded to 4 decimals. s = 1 when tightening (g > 0). A
  loosening step is scaled by s = 1 / (1 + max(0, relative increase of the TD error over the
  previous window)): while learning is in flux the cache should not change under it. And if
  the previous update loosened delta and the window's return then fell by more than the
  return noise (std of the returns of up to 5 earlier windows, at least 1e-6), the update
  tightens by threshold_step / 2 instead: a finite-difference surrogate of d return / d delta.
- refresh (semantic mode): over budget by half (g > 0.5) it turns on at `min_refresh` or
  halves (not below `min_refresh`); under budget by half (g < -0.5) it doubles, and turns off
  (0) beyond `max_refresh`.
- temperature (semantic mode): tau <- clip(tau * exp(temperature_step * tanh(g)), 1,
  max_temperature), rounded to 4 decimals: flatten the priors served from semantic hits while
  they are wrong, relax back to 1 within budget (exact hits and fresh priors are never
  flattened: they are what the LLM answers).
- capacity (semantic and exact modes): when evictions exceed 1% of the window's lookups,
  capacity <- min(max_capacity, ceil(capacity * capacity_growth)). It never shrinks: an
  entry costs ~2 KB, a miss ~1 s of LLM time.

Mode `off` changes nothing; `exact` hits cost 0 KL by construction, so only its capacity
adapts. Pure Python: the driver feeds it metrics and applies `MetaUpdate.params` to the cache
actor; it must not talk to Ray, the cache or MLflow itself. Documented in docs/cache.md.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from priorcache.platform.cache.core import CacheParams
from priorcache.platform.config import MetaConfig

EVICTION_SHARE = 0.01
"""Evictions per lookup above which the capacity grows."""
RETURN_HISTORY = 5
"""Windows whose returns estimate the return noise."""


@dataclass(frozen=True)
class MetaSignals:
    """What one training window (iteration) measured; the driver fills it from the run's metrics."""

    hit_rate: float
    """Hits / prior requests in the window."""
    kl_semantic: float | None
    """Mean audited KL(cached || fresh) per audited semantic hit; None if no audit finished."""
    audits: int
    """Audits finished in the window."""
    lookups: int
    """Prior requests in the window."""
    evictions: int
    """Cache evictions in the window."""
    size: int
    """Cache entries now."""
    return_mean: float
    """Mean episode return (nan when no episode finished)."""
    td_error: float | None
    """The learner's mean |TD error| or advantage std; None when it reports neither."""


@dataclass(frozen=True)
class MetaUpdate:
    """The outcome of one update."""

    params: CacheParams
    """The new parameters (equal to the old ones when nothing changed)."""
    changes: dict[str, tuple[float, float]]
    """Parameter name -> (old, new), only for the parameters that changed."""
    reasons: dict[str, str]
    """Parameter name -> why it changed, for the change log."""


class CacheMetaOptimizer:
    """Adapts threshold, refresh, prior temperature and capacity; see the module docstring."""

    def __init__(self, cfg: MetaConfig, params: CacheParams) -> None:
        self._cfg = cfg
        self._params = params
        self._returns: deque[float] = deque(maxlen=RETURN_HISTORY)
        self._previous_td: float | None = None
        # Return of the window whose update loosened delta; None when the last update did not.
        self._return_before_loosening: float | None = None

    @property
    def params(self) -> CacheParams:
        """The current parameters."""
        return self._params

    def step(self, signals: MetaSignals) -> MetaUpdate:
        """One update from one window's signals."""
        old = self._params
        if old.mode == "off":
            return MetaUpdate(old, {}, {})
        new: dict[str, float] = {}
        reasons: dict[str, str] = {}
        g = self._violation(signals)
        loosened = False
        if old.mode == "semantic" and g is not None:
            why = (f"KL per semantic hit {signals.kl_semantic:.4g} vs budget {self._cfg.kl_budget:.4g}"
                   f" (g={g:+.2f}, hit rate {signals.hit_rate:.1%})")
            move, threshold_why = self._threshold_move(g, signals, why)
            new["threshold"] = round(float(np.clip(old.threshold + move, self._cfg.min_threshold,
                                                   self._cfg.max_threshold)), 4)
            reasons["threshold"] = threshold_why
            loosened = new["threshold"] < old.threshold
            new["refresh"] = self._refresh(old.refresh, g)
            reasons["refresh"] = why
            new["temperature"] = round(float(np.clip(
                old.temperature * math.exp(self._cfg.temperature_step * math.tanh(g)),
                1.0, self._cfg.max_temperature)), 4)
            reasons["temperature"] = why
        if signals.lookups > 0 and signals.evictions / signals.lookups > EVICTION_SHARE:
            grown = min(self._cfg.max_capacity, math.ceil(old.capacity * self._cfg.capacity_growth))
            new["capacity"] = max(old.capacity, grown)
            reasons["capacity"] = (f"{signals.evictions} evictions in {signals.lookups} lookups"
                                   f" (> {EVICTION_SHARE:.0%}) at {signals.size} entries")
        self._remember(signals, loosened)
        changes = {name: (getattr(old, name), value) for name, value in new.items()
                   if value != getattr(old, name)}
        self._params = replace(old, **{name: value for name, (_, value) in changes.items()})
        return MetaUpdate(self._params, changes, {name: reasons[name] for name in changes})

    def _violation(self, signals: MetaSignals) -> float | None:
        """g = KL / budget - 1, or None when the window's audits are too few to trust."""
        kl = signals.kl_semantic
        if kl is None or not math.isfinite(kl) or signals.audits < self._cfg.min_audits:
            return None
        return kl / self._cfg.kl_budget - 1.0

    def _threshold_move(self, g: float, signals: MetaSignals, why: str) -> tuple[float, str]:
        """Signed change of delta (before clipping) and why."""
        step = self._cfg.threshold_step
        if g >= 0:
            return step * math.tanh(g), why
        if self._return_fell(signals.return_mean):
            return step / 2, (f"return fell to {signals.return_mean:.4g} from "
                              f"{self._return_before_loosening:.4g} after the last loosening")
        scale = 1.0 / (1.0 + self._td_increase(signals.td_error))
        return step * math.tanh(g) * scale, f"{why}, loosening scaled by {scale:.2f}"

    def _return_fell(self, current: float) -> bool:
        """Whether the return fell by more than its noise since the loosening update."""
        before = self._return_before_loosening
        if before is None or not math.isfinite(current):
            return False
        noise = max(float(np.std(self._returns)) if self._returns else 0.0, 1e-6)
        return before - current > noise

    def _td_increase(self, td: float | None) -> float:
        """Relative increase of the TD error over the previous window, at least 0."""
        previous = self._previous_td
        if td is None or previous is None or not math.isfinite(td) or previous <= 0:
            return 0.0
        return max(0.0, (td - previous) / previous)

    def _refresh(self, refresh: int, g: float) -> int:
        """Re-score entries sooner while over budget, later (then never) while under it."""
        cfg = self._cfg
        if g > 0.5:
            return cfg.min_refresh if refresh == 0 else max(cfg.min_refresh, refresh // 2)
        if g < -0.5 and refresh > 0:
            doubled = refresh * 2
            return 0 if doubled > cfg.max_refresh else doubled
        return refresh

    def _remember(self, signals: MetaSignals, loosened: bool) -> None:
        """Keep what the next update compares against (finite values only)."""
        finite_return = math.isfinite(signals.return_mean)
        self._return_before_loosening = signals.return_mean if loosened and finite_return else None
        if finite_return:
            self._returns.append(signals.return_mean)
        if signals.td_error is not None and math.isfinite(signals.td_error):
            self._previous_td = signals.td_error


def signals_from_metrics(window: dict[str, float], previous: dict[str, float] | None) -> MetaSignals:
    """Signals of one iteration from the driver's metric dicts of this and the previous iteration.

    `prior_audits`, `prior_requests` and `cache_evictions` are cumulative, so the window's
    counts are differences; the other metrics already describe the window.
    """
    def window_count(key: str) -> int:
        before = previous.get(key, 0.0) if previous is not None else 0.0
        # A counter that restarted (e.g. a replaced env runner) must not give a negative count.
        return max(0, int(round(window.get(key, 0.0) - before)))

    # The window's own audit mean; the rolling mean over recent audits only as a fallback.
    kl = window.get("prior_kl_audit_semantic_window", window.get("prior_kl_audit_semantic"))
    td = window.get("td_error", window.get("advantage_std"))
    return MetaSignals(
        hit_rate=float(window["cache_hit_rate"]),
        kl_semantic=float(kl) if kl is not None and math.isfinite(kl) else None,
        audits=window_count("prior_audits"),
        lookups=window_count("prior_requests"),
        evictions=window_count("cache_evictions"),
        size=int(window["cache_size"]),
        return_mean=float(window["episode_return_mean"]),
        td_error=float(td) if td is not None else None,
    )
