"""The named cache actor shared by concurrent callers, and restarted from its snapshot (real Ray)."""

import sys
import time

import numpy as np
import pytest
import ray

from priorcache.platform.cache.actor import RAY_NAMESPACE, Recovery, cache_actor_name, get_or_create_cache_actor
from priorcache.platform.cache.core import CacheParams, Guard, hash_text
from priorcache.platform.cache.persist import load_snapshot

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

    def lookup_for(self, ids, seconds):
        """Lookups back to back for `seconds` (an env runner's stream of requests)."""
        outcomes, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            outcomes.append(self.lookup(ids))
        return outcomes


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


def wait_for_snapshot(path, entries, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while not (path.is_file() and len(load_snapshot(path)["text_hash"]) == entries):
        assert time.monotonic() < deadline, f"no snapshot of {entries} entries at {path}"
        time.sleep(0.05)


def test_a_killed_actor_restarts_from_its_snapshot_while_callers_go_on(ray_session, tmp_path):
    namespace, snapshot = "test-restart", tmp_path / "cache_snapshot.npz"
    recovery = Recovery(max_restarts=2, snapshot_path=str(snapshot), snapshot_every_s=0.1)
    cache = get_or_create_cache_actor(namespace, CacheParams(capacity=64, threshold=0.99), DIM, recovery)
    caller = Caller.remote(namespace)
    ray.get(caller.insert.remote(range(8)))
    wait_for_snapshot(snapshot, 8)
    _, version = ray.get(cache.params.remote())
    stream = caller.lookup_for.remote(range(8), 4.0)  # lookups before, during and after the restart
    time.sleep(0.5)
    ray.kill(cache, no_restart=False)
    outcomes = ray.get(stream)
    # No call failed, and every lookup hit: the restarted actor reloaded the 8 entries.
    assert len(outcomes) > 2 and all(all(hits) for hits in outcomes)
    _, restarted_version = ray.get(cache.params.remote())
    assert restarted_version != version
    stats = ray.get(cache.stats.remote())
    assert stats["size"] == 8 and stats["inserts"] == 0  # counters start again from zero


def test_without_restarts_a_killed_actor_stays_dead(ray_session):
    cache = get_or_create_cache_actor("test-no-restart", CacheParams(), DIM, Recovery(max_restarts=0))
    ray.get(cache.stats.remote())
    ray.kill(cache, no_restart=False)
    deadline = time.monotonic() + 30
    with pytest.raises(ray.exceptions.ActorDiedError):
        while time.monotonic() < deadline:  # the kill lands a moment later
            ray.get(cache.stats.remote())
            time.sleep(0.05)
