"""The fixed metric names of DESIGN.md, and how one training iteration fills them.

Sources: RLlib's result dict (env-runner metrics of `PriorMetricsCallback`, learner
metrics of the *-Prior learners: `prior_kl`, `prior_weight`, SAC-Prior's temperature `prior_alpha`), the LLM pool (queries and call latency) and the cache
actor (size and parameters). The same names go to MLflow, `summary.json` and benchmarks.
Offline algorithms (`cql`, `cql_prior`) report their online evaluation's return and success,
`env_steps` = transitions trained on, and `train_time_s` = seconds of learner updates.
"""

from __future__ import annotations

from typing import Any

import ray

from priorcache.algorithms import prior_metrics as pm
from priorcache.algorithms.offline_step import TRAIN_TIME_KEY, TRANSITIONS_TRAINED_KEY
from priorcache.algorithms.ppo_prior import PRIOR_KL_KEY
from priorcache.algorithms.prior_trust import PRIOR_WEIGHT_KEY
from priorcache.algorithms.sac_prior import PRIOR_ALPHA_KEY
from priorcache.platform.cache.controller import PARAM_METRICS

METRIC_NAMES: tuple[str, ...] = (
    "llm_queries", "prior_requests", "cache_hit_rate",
    "prior_latency_ms_p50", "prior_latency_ms_p95", "llm_latency_ms_p50", "llm_latency_ms_p95",
    "cache_size", "cache_threshold", "cache_refresh", "prior_kl_audit",
    "episode_return_mean", "success_rate", "env_steps", "wall_time_s",
)
"""DESIGN.md's metrics: every run reports all of them."""

_ENV_STEPS = "num_env_steps_sampled_lifetime"
_RLLIB_MODULE = "default_policy"


def collect_iteration_metrics(result: dict[str, Any], cache: Any, pool: Any, wall_time_s: float,
                              lifetime: bool = False) -> dict[str, float]:
    """DESIGN.md's metrics (plus a few diagnostics) after one `algo.train()`.

    Rates and LLM latencies cover the iteration's window, or the whole run with `lifetime`.
    `cache`/`pool` are the actor handles, or None when the algorithm uses no prior.
    """
    offline = TRANSITIONS_TRAINED_KEY in result
    # An offline algorithm samples nothing: its env runners are those of its online evaluation,
    # and its progress is the transitions it trained on.
    runners = result.get("evaluation", {}).get("env_runners", {}) if offline else result.get("env_runners", {})
    requests = float(runners.get(pm.PRIOR_REQUESTS, 0))
    if lifetime:
        hits, window_requests = float(runners.get(pm.PRIOR_HITS, 0)), requests
    else:
        hits, window_requests = float(runners.get(pm.WINDOW_HITS, 0)), float(runners.get(pm.WINDOW_REQUESTS, 0))
    metrics: dict[str, float] = {
        "env_steps": float(result[TRANSITIONS_TRAINED_KEY] if offline else runners.get(_ENV_STEPS, 0)),
        "wall_time_s": wall_time_s,
        "prior_requests": requests,
        "cache_hit_rate": hits / window_requests if window_requests else 0.0,
        "prior_fallbacks": float(runners.get(pm.PRIOR_FALLBACKS, 0)),
        "prior_audits": float(runners.get(pm.AUDITS, 0)),
        "episode_return_mean": float(runners.get("episode_return_mean", float("nan"))),
        "success_rate": float(runners.get(pm.SUCCESS, float("nan"))),
        "episode_len_mean": float(runners.get("episode_len_mean", float("nan"))),
    }
    if offline:
        metrics["train_time_s"] = float(result[TRAIN_TIME_KEY])
    metrics.update(_percentiles(runners.get(pm.PRIOR_LATENCY), "prior_latency_ms"))
    metrics.update(_kl_audit(runners))
    if not lifetime:
        metrics.update(_window_audit(runners, hits))
    metrics.update(_percentiles(runners.get(pm.AUDIT_KL_PER_DISTANCE), "prior_audit_kl_per_distance"))
    learner = result.get("learners", {}).get(_RLLIB_MODULE, {})
    for key in (PRIOR_KL_KEY, PRIOR_WEIGHT_KEY, PRIOR_ALPHA_KEY):
        if key in learner:
            metrics[key] = float(learner[key])
    if pool is not None:
        metrics.update(ray.get(pool.stats.remote(window=not lifetime)))
    else:
        metrics["llm_queries"] = 0.0
    if cache is not None:
        stats = ray.get(cache.stats.remote())
        metrics.update({metric: stats[param] for param, metric in PARAM_METRICS.items()})
        metrics.update({"cache_size": stats["size"], "cache_evictions": stats["evictions"],
                        "cache_remapped_hits": stats["remapped_hits"], "cache_false_hits": stats["false_hits"],
                        "cache_proposal_lookups": stats["proposal_lookups"],
                        "cache_proposal_hits": stats["proposal_hits"]})
    return metrics


def _kl_audit(runners: dict[str, Any]) -> dict[str, float]:
    """`prior_kl_audit`: expected KL(cached || fresh) per hit over the run.

    Exact hits cost 0 nats by construction (same text, model, prompt, candidates); semantic
    hits cost what their audits measured. So the per-hit mean is the semantic share of hits
    times the audited semantic mean; it is 0 when no semantic hit was served, and unknown
    (absent) while semantic hits exist but no audit has finished.
    """
    hits = float(runners.get(pm.PRIOR_HITS, 0))
    semantic = float(runners.get(pm.SEMANTIC_HITS, 0))
    if semantic == 0:
        return {"prior_kl_audit": 0.0} if hits else {}
    if pm.KL_AUDIT_SEMANTIC not in runners:
        return {}
    kl = float(runners[pm.KL_AUDIT_SEMANTIC])
    return {"prior_kl_audit": semantic / hits * kl, pm.KL_AUDIT_SEMANTIC: kl}


def _window_audit(runners: dict[str, Any], hits: float) -> dict[str, float]:
    """This iteration's semantic-hit distances and audits, on the per-hit scale of `prior_kl_audit`.

    `prior_semantic_distance_window` (sum of 1 - similarity over semantic hits) and
    `prior_hits_window` are what the KL bound needs; `prior_kl_audit_window` is the measured
    side of the same window (absent when no audit finished in it).
    """
    semantic = float(runners.get(pm.WINDOW_SEMANTIC_HITS, 0))
    audits = float(runners.get(pm.WINDOW_AUDITS, 0))
    out = {"prior_hits_window": hits, "prior_semantic_hits_window": semantic,
           "prior_semantic_distance_window": float(runners.get(pm.WINDOW_SEMANTIC_DISTANCE, 0)),
           "prior_audits_window": audits}
    if hits and audits:
        out["prior_kl_audit_semantic_window"] = float(runners.get(pm.WINDOW_AUDIT_KL, 0)) / audits
        out["prior_kl_audit_window"] = semantic / hits * out["prior_kl_audit_semantic_window"]
    elif hits and not semantic:
        out["prior_kl_audit_window"] = 0.0
    return out


def _percentiles(value: Any, prefix: str) -> dict[str, float]:
    """RLlib's percentile stats ({50: x, 95: y}, keys int or str) -> `{prefix}_p50`, ..."""
    if not isinstance(value, dict):
        return {}
    return {f"{prefix}_p{int(float(k))}": float(v) for k, v in value.items() if v is not None}


def progress_line(iteration: int, iterations: int, m: dict[str, float]) -> str:
    """One console line per iteration."""
    return (
        f"iter {iteration:>3}/{iterations} | steps {m['env_steps']:>7.0f} | return {m['episode_return_mean']:6.2f}"
        f" | success {m['success_rate']:5.2f} | hit rate {m['cache_hit_rate']:6.1%}"
        f" | LLM queries {m.get('llm_queries', 0):>5.0f}/{m['prior_requests']:<6.0f}"
        f" | prior p50 {m.get('prior_latency_ms_p50', float('nan')):7.2f} ms"
        f" | LLM p50 {m.get('llm_latency_ms_p50', float('nan')):6.0f} ms | {m['wall_time_s']:5.0f} s"
    )
