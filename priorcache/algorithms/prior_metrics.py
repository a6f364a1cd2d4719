"""RLlib callback that turns the prior info of every env step into env-runner metrics.

`PriorFeaturesWrapper` writes `prior_source` and `prior_latency_ms` into each step's info;
this callback counts requests and hits, records latencies, KL audits and episode success in RLlib's
`MetricsLogger`, which aggregates them across env runners. The driver reads them under
`result["env_runners"]` with the keys below (mapped to DESIGN.md's names by the runner).
"""

from __future__ import annotations

import math
from typing import Any

from ray.rllib.callbacks.callbacks import RLlibCallback

from priorcache.platform.prior_client import HIT_SOURCES

PRIOR_REQUESTS = "prior_requests"
PRIOR_HITS = "prior_hits"
PRIOR_FALLBACKS = "prior_fallbacks"
WINDOW_REQUESTS = "prior_requests_window"
WINDOW_HITS = "prior_hits_window"
PRIOR_LATENCY = "prior_latency_ms"
SEMANTIC_HITS = "prior_semantic_hits"
KL_AUDIT_SEMANTIC = "prior_kl_audit_semantic"
AUDITS = "prior_audits"
SUCCESS = "success"
# Per-iteration sums for the KL bound and the meta-optimizer (the same window on both sides).
WINDOW_SEMANTIC_HITS = "prior_semantic_hits_window"
WINDOW_SEMANTIC_DISTANCE = "prior_semantic_distance_window"
WINDOW_AUDITS = "prior_audits_window"
WINDOW_AUDIT_KL = "prior_audit_kl_window"
AUDIT_KL_PER_DISTANCE = "prior_audit_kl_per_distance"
"""Percentiles of KL / (1 - similarity) over audits so far: the bound's slope."""


def episode_success(last_info: dict[str, Any]) -> float:
    """1.0 or 0.0 from the episode's last info: `won` (text games) or `success` (Meta-World: the
    task is solved at the end of the episode; it reports success and never terminates). NaN
    where the env reports neither (MuJoCo locomotion has no success, only returns)."""
    for key in ("won", "success"):
        if key in last_info:
            return float(bool(last_info[key]))
    return math.nan


class PriorMetricsCallback(RLlibCallback):
    """Counts prior requests/hits, records their latency and episode success."""

    def on_episode_start(self, *, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
        self._log_prior(episode.get_infos(-1), metrics_logger)

    def on_episode_step(self, *, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
        self._log_prior(episode.get_infos(-1), metrics_logger)

    def on_episode_end(self, *, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
        success = episode_success(episode.get_infos(-1))
        if not math.isnan(success):  # never logged: `success_rate` reads NaN, not a made-up 0
            metrics_logger.log_value(SUCCESS, success, reduce="mean", window=100)

    @staticmethod
    def _log_prior(info: dict[str, Any], metrics_logger: Any) -> None:
        source = info.get("prior_source")
        if source is None:
            return
        hit = float(source in HIT_SOURCES)
        semantic = float(hit and not info["prior_exact"])
        metrics_logger.log_value(SEMANTIC_HITS, semantic, reduce="lifetime_sum")
        metrics_logger.log_value(WINDOW_SEMANTIC_HITS, semantic, reduce="sum")
        metrics_logger.log_value(WINDOW_SEMANTIC_DISTANCE, semantic * (1.0 - info["prior_similarity"]), reduce="sum")
        metrics_logger.log_value(PRIOR_REQUESTS, 1, reduce="lifetime_sum")
        metrics_logger.log_value(PRIOR_HITS, hit, reduce="lifetime_sum")
        metrics_logger.log_value(PRIOR_FALLBACKS, float(source == "fallback"), reduce="lifetime_sum")
        metrics_logger.log_value(WINDOW_REQUESTS, 1, reduce="sum")
        metrics_logger.log_value(WINDOW_HITS, hit, reduce="sum")
        metrics_logger.log_value(PRIOR_LATENCY, info["prior_latency_ms"], reduce="percentiles",
                                 window=2000, percentiles=[50, 95])
        for kl, similarity in zip(info["prior_audits"], info["prior_audit_similarities"]):
            metrics_logger.log_value(AUDITS, 1, reduce="lifetime_sum")
            metrics_logger.log_value(KL_AUDIT_SEMANTIC, kl, reduce="mean", window=1000)
            metrics_logger.log_value(WINDOW_AUDITS, 1, reduce="sum")
            metrics_logger.log_value(WINDOW_AUDIT_KL, kl, reduce="sum")
            if similarity < 1.0:  # at distance 0 the KL is the model's numeric noise
                metrics_logger.log_value(AUDIT_KL_PER_DISTANCE, kl / (1.0 - similarity), reduce="percentiles",
                                         window=5000, percentiles=[95])
