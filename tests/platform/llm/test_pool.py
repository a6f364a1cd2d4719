"""The LLM replica pool on the real CPU LLM: single flight, batching across callers, latency,
and replicas started under another Python (`prior.llm.replica_python`, how vLLM replicas run),
replacing a replica that died."""

import stat
import sys

import numpy as np
import pytest
import ray
from ray.exceptions import RayActorError

from priorcache.platform.config import LLMConfig
from priorcache.platform.llm.pool import get_or_create_pool

STATE = "Goal: open the chest.\nYou are in a storeroom. You see a closed wooden chest."
CANDIDATES = ["open wooden chest", "go west", "look"]


@pytest.fixture(scope="module")
def pool(ray_session):
    # max_batch differs from the default so this pool is a separate actor with fresh counters.
    return get_or_create_pool(LLMConfig(max_batch=4))


def test_identical_in_flight_requests_reach_the_llm_once(pool):
    before = ray.get(pool.stats.remote())
    priors = ray.get([pool.prior.remote(STATE, CANDIDATES) for _ in range(5)])
    after = ray.get(pool.stats.remote())
    assert after["llm_queries"] - before["llm_queries"] == 1
    assert after["llm_deduplicated"] - before["llm_deduplicated"] == 4
    for prior in priors:
        np.testing.assert_array_equal(prior, priors[0])
    assert np.exp(priors[0]).sum() == pytest.approx(1.0)
    assert int(np.argmax(priors[0])) == 0


def test_requests_queued_behind_a_busy_replica_share_calls(pool):
    before = ray.get(pool.stats.remote())
    states = [f"{STATE} It is day {i}." for i in range(9)]
    ray.get([pool.prior.remote(s, CANDIDATES) for s in states])
    after = ray.get(pool.stats.remote(window=True))
    assert after["llm_queries"] - before["llm_queries"] == 9
    # One replica: the first request runs alone, the rest queue and go in batches of <= 4.
    assert after["llm_calls"] - before["llm_calls"] <= 4
    assert after["llm_latency_ms_p50"] > 0 and after["llm_latency_ms_p95"] >= after["llm_latency_ms_p50"]


def test_audits_are_counted_apart(pool):
    before = ray.get(pool.stats.remote())
    ray.get(pool.prior.remote(STATE + " Audit me.", CANDIDATES, audit=True))
    after = ray.get(pool.stats.remote())
    assert after["llm_audit_queries"] - before["llm_audit_queries"] == 1
    assert after["llm_queries"] == before["llm_queries"]


def test_replicas_run_under_the_configured_python(ray_session, tmp_path):
    # A wrapper that leaves a mark, then runs this Python: Ray must start the replica through it
    # (runtime_env py_executable), as it starts vLLM replicas through the vLLM environment's python.
    mark = tmp_path / "started"
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\ntouch "{mark}"\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    pool = get_or_create_pool(LLMConfig(max_batch=3, replica_python=str(wrapper)))
    prior = ray.get(pool.prior.remote(STATE, CANDIDATES))
    assert np.exp(prior).sum() == pytest.approx(1.0)
    assert mark.exists()


def test_a_killed_replica_is_replaced_and_its_requests_answered_by_another(ray_session):
    # A pool of its own: two replicas, one replacement allowed.
    pool = get_or_create_pool(LLMConfig(replicas=2, max_batch=2, num_cpus_per_replica=0.5, max_replica_restarts=1))
    first, second = ray.get(pool.replicas.remote())
    ray.get([first.info.remote(), second.info.remote()])  # both have loaded the model
    states = [f"{STATE} Crate {i} is here." for i in range(8)]
    refs = [pool.prior.remote(s, CANDIDATES) for s in states]
    ray.kill(first)  # while the first calls are running, and requests wait in the queue
    priors = ray.get(refs)
    assert all(p.shape == (3,) and np.exp(p).sum() == pytest.approx(1.0) for p in priors)
    stats = ray.get(pool.stats.remote())
    assert stats["llm_replica_restarts"] == 1 and stats["llm_requeued"] >= 1
    assert stats["llm_queries"] == 8  # a requeued request counts once, when it is answered
    replacement, kept = ray.get(pool.replicas.remote())
    assert replacement._actor_id != first._actor_id and kept._actor_id == second._actor_id
    assert ray.get(replacement.info.remote()) == ray.get(kept.info.remote())

    # Past `max_replica_restarts`, requests that reach a dead replica fail instead of waiting forever.
    ray.kill(kept)
    with pytest.raises(RayActorError):
        ray.get([pool.prior.remote(f"{STATE} Barrel {i} is here.", CANDIDATES) for i in range(8)])
    assert ray.get(pool.stats.remote())["llm_replica_restarts"] == 1
