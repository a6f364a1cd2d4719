"""The named cache actor shared by concurrent callers (real Ray)."""

import sys

import numpy as np
import ray

from priorcache.platform.cache.actor import RAY_NAMESPACE, cache_actor_name, get_or_create_cache_actor
from priorcache.platform.cache.core import CacheParams, Guard, hash_text

DIM = 16
GUARD = Guard.for_candidates("m", "p-v1", ["a", "b", "c"])


def _vec(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i % DIM] = 1.0
    return v


@ray.remote(num_cpus=0)
class Caller:
    """A separate process that reaches the cache by name, like an env runner does."""

    def __init__(self, namespace: str):
        self.cache = ray.get_actor(cache_actor_name(namespace), namespace=RAY_NAMESPACE)

    def insert(self, ids):
        ray.get(self.cache.insert.remote(
            [(_vec(i), hash_text(str(i)), GUARD, np.log(np.full(3, 1 / 3))) for i in ids]))

    def lookup(self, ids):
        hits, _, _ = ray.get(self.cache.lookup.remote([(_vec(i), hash_text(str(i)), GUARD) for i in ids]))
        return [h is not None for h in hits]


# Test modules are not importable on Ray workers: ship this one's classes by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def test_two_concurrent_callers_share_hits(ray_session):
    namespace = "test-shared"
    cache = get_or_create_cache_actor(namespace, CacheParams(capacity=64, threshold=0.99), DIM)
    assert get_or_create_cache_actor(namespace, CacheParams(), DIM)._actor_id == cache._actor_id
    writer, reader = Caller.remote(namespace), Caller.remote(namespace)
    # Both write and read at once: disjoint halves, then each reads the other's half.
    ray.get([writer.insert.remote(range(0, 8)), reader.insert.remote(range(8, 16))])
    seen_by_reader, seen_by_writer = ray.get([reader.lookup.remote(range(0, 8)), writer.lookup.remote(range(8, 16))])
    assert all(seen_by_reader) and all(seen_by_writer)
    stats = ray.get(cache.stats.remote())
    assert stats["size"] == 16 and stats["hits"] == 16 and stats["lookups"] == 16


def test_parameters_change_at_run_time(ray_session):
    cache = get_or_create_cache_actor("test-params", CacheParams(threshold=0.99), DIM)
    params, version = ray.get(cache.params.remote())
    assert params.threshold == 0.99
    ray.get(cache.set_params.remote(threshold=0.5, capacity=10))
    params, new_version = ray.get(cache.params.remote())
    assert (params.threshold, params.capacity, new_version) == (0.5, 10, version + 1)
