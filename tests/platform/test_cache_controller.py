"""The driver's cache work on a real cache actor: meta updates applied and logged, bound, snapshot."""

import json

import numpy as np
import ray

from priorcache.platform.cache.actor import get_or_create_cache_actor
from priorcache.platform.cache.controller import CHANGE_LOG, CacheController
from priorcache.platform.cache.core import CacheParams, Guard, hash_text
from priorcache.platform.config import PriorConfig, MetaConfig, CacheConfig

DIM = 4
GUARD = Guard.for_candidates("m", "p", ["a", "b"])


def _prior_config(namespace: str, **cache) -> PriorConfig:
    return PriorConfig(cache=CacheConfig(namespace=namespace, **cache))


def _metrics(step: int, kl_semantic: float, audits: int) -> dict[str, float]:
    return {"cache_hit_rate": 0.8, "prior_kl_audit_semantic_window": kl_semantic, "prior_audits": audits,
            "prior_requests": 100.0 * step, "cache_evictions": 0.0, "cache_size": 50, "episode_return_mean": 1.0,
            "wall_time_s": 10.0 * step, "env_steps": 100.0 * step, "prior_hits_window": 80,
            "prior_semantic_distance_window": 4.0, "prior_audit_kl_per_distance_p95": 2.0}


def test_meta_updates_reach_the_actor_and_the_change_log(ray_session, tmp_path):
    cfg = _prior_config("controller-meta", threshold=0.9, meta=MetaConfig(enabled=True, kl_budget=0.05))
    actor = get_or_create_cache_actor("controller-meta", CacheParams(threshold=0.9), DIM)
    controller = CacheController(cfg, actor, tmp_path)
    added = controller.after_iteration(1, _metrics(1, kl_semantic=0.5, audits=20))  # far over budget
    params, _ = ray.get(actor.params.remote())
    assert params.threshold > 0.9 and added["cache_threshold"] == params.threshold
    assert params.temperature > 1.0
    record = json.loads((tmp_path / CHANGE_LOG).read_text().splitlines()[0])
    assert record["iteration"] == 1 and record["changes"]["threshold"][0] == 0.9
    assert "budget" in record["reasons"]["threshold"]
    assert 0 <= added["meta_overhead_frac"] < 1


def test_bound_uses_the_previous_iterations_slope(ray_session, tmp_path):
    actor = get_or_create_cache_actor("controller-bound", CacheParams(), DIM)
    controller = CacheController(_prior_config("controller-bound"), actor, tmp_path)
    first = controller.after_iteration(1, _metrics(1, 0.01, 10))
    assert "prior_kl_bound" not in first  # no earlier audits: no slope yet
    second = controller.after_iteration(2, {**_metrics(2, 0.01, 20), "prior_audit_kl_per_distance_p95": 99.0})
    assert second["prior_kl_bound"] == 2.0 * 4.0 / 80  # slope of iteration 1, not 99
    assert not (tmp_path / CHANGE_LOG).exists()  # meta-optimizer off: nothing changes


def test_snapshot_warm_starts_another_cache(ray_session, tmp_path):
    source = get_or_create_cache_actor("controller-src", CacheParams(), DIM)
    v = np.array([1, 0, 0, 0], np.float32)
    ray.get(source.insert.remote([(v, hash_text("s"), GUARD, np.log([0.7, 0.3]), ("a", "b"))]))
    path = CacheController(_prior_config("controller-src"), source, tmp_path).save_snapshot()
    target = get_or_create_cache_actor("controller-dst", CacheParams(), DIM)
    loaded = CacheController(_prior_config("controller-dst", warm_start=str(path)), target, tmp_path).warm_start()
    assert loaded == 1
    hits, _, _ = ray.get(target.lookup.remote([(v, hash_text("s"), GUARD, ("a", "b"))]))
    np.testing.assert_allclose(np.exp(hits[0].logp), [0.7, 0.3])
