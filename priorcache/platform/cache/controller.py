"""The driver's side of the cache during training: warm start, KL bound, meta-optimizer, snapshot.

`CacheController` runs in the experiment driver, once per training iteration, after the
iteration's metrics are collected: it adds `prior_kl_bound` (the paper-style bound with the
slope L taken from the audits of *earlier* iterations), lets the meta-optimizer adapt the
shared cache's parameters (every change is applied to the cache actor, appended to
`cache_param_changes.jsonl` in the run folder and shows in the per-iteration metrics
`cache_threshold`, `cache_capacity`, `cache_refresh`, `prior_temperature`), and measures
its own time as `meta_overhead_frac` of the run's wall time. At the end of a run, finished
or not, it writes the cache's entries to `cache_snapshot.npz` for a later warm start.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import ray

from priorcache.platform.cache.kl_bound import kl_bound
from priorcache.platform.cache.meta import CacheMetaOptimizer, signals_from_metrics
from priorcache.platform.cache.persist import load_snapshot, save_snapshot
from priorcache.platform.config import PriorConfig

PARAM_METRICS = {"threshold": "cache_threshold", "capacity": "cache_capacity", "refresh": "cache_refresh",
                 "temperature": "prior_temperature"}
"""Cache parameter -> the metric that reports it (after an update, the new value in the same step)."""
CHANGE_LOG = "cache_param_changes.jsonl"
SNAPSHOT = "cache_snapshot.npz"
_SLOPE = "prior_audit_kl_per_distance_p95"


class CacheController:
    """See the module docstring; `cache` is the shared cache actor's handle."""

    def __init__(self, cfg: PriorConfig, cache: ray.actor.ActorHandle, run_dir: Path) -> None:
        from priorcache.platform.prior_client import cache_params

        self._cfg = cfg.cache
        self._cache = cache
        self._run_dir = run_dir
        self._meta = CacheMetaOptimizer(cfg.cache.meta, cache_params(cfg)) if cfg.cache.meta.enabled else None
        self._previous: dict[str, float] | None = None
        self._spent_s = 0.0

    def warm_start(self) -> int:
        """Load `prior.cache.warm_start` into the shared cache; returns the live entries (0 if unset)."""
        if not self._cfg.warm_start:
            return 0
        return int(ray.get(self._cache.restore.remote(load_snapshot(self._cfg.warm_start))))

    def after_iteration(self, iteration: int, metrics: dict[str, float]) -> dict[str, float]:
        """Bound, meta-optimizer step and overhead for one iteration's metrics; returns additions."""
        started = time.perf_counter()
        added: dict[str, float] = {}
        slope = (self._previous or {}).get(_SLOPE)
        if slope is not None and "prior_hits_window" in metrics:
            added["prior_kl_bound"] = kl_bound(slope, metrics["prior_semantic_distance_window"],
                                               int(metrics["prior_hits_window"]))
        if self._meta is not None and iteration % self._cfg.meta.every == 0:
            update = self._meta.step(signals_from_metrics(metrics, self._previous))
            if update.changes:
                ray.get(self._cache.set_params.remote(**{name: new for name, (_, new) in update.changes.items()}))
                self._log_changes(iteration, metrics, update.changes, update.reasons)
                added.update({PARAM_METRICS[name]: float(new) for name, (_, new) in update.changes.items()})
        self._previous = metrics
        self._spent_s += time.perf_counter() - started
        added["meta_overhead_frac"] = self._spent_s / max(metrics["wall_time_s"], 1e-9)
        return added

    def _log_changes(self, iteration: int, metrics: dict[str, float], changes: dict[str, tuple[float, float]],
                     reasons: dict[str, str]) -> None:
        record: dict[str, Any] = {"iteration": iteration, "env_steps": metrics.get("env_steps"),
                                  "changes": {name: list(pair) for name, pair in changes.items()}, "reasons": reasons}
        with (self._run_dir / CHANGE_LOG).open("a") as log:
            log.write(json.dumps(record) + "\n")

    def save_snapshot(self) -> Path:
        """The shared cache's entries -> `cache_snapshot.npz` in the run folder."""
        return save_snapshot(ray.get(self._cache.snapshot.remote()), self._run_dir / SNAPSHOT)

