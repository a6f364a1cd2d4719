"""The prior request path on real components: embedder, near-cache, cache actor, LLM pool."""

import time

import numpy as np
import pytest

from priorcache.platform.config import PriorConfig
from priorcache.platform.prior_client import PriorClient

STATE = "Goal: take the key.\nYou are in a hall. A brass key lies on the floor."
CANDIDATES = ["take brass key", "go north", "look"]


def prior_config(namespace: str, **cache) -> PriorConfig:
    cfg = PriorConfig()
    cfg.cache.namespace = namespace
    for key, value in cache.items():
        setattr(cfg.cache, key, value)
    return cfg


def test_miss_then_near_hit_then_actor_hit_from_another_client(ray_session):
    cfg = prior_config("client-paths", audit_rate=0.0)
    first = PriorClient(cfg)
    miss = first.request(STATE, CANDIDATES)
    assert miss.source == "llm" and not miss.exact
    assert np.exp(miss.logp).sum() == pytest.approx(1.0)
    near = first.request(STATE, CANDIDATES)
    assert near.source == "near" and near.exact
    np.testing.assert_array_equal(near.logp, miss.logp)
    # A second process-like client has an empty near-cache: the shared actor answers.
    second = PriorClient(cfg, embedder=first.embedder)
    shared = second.request(STATE, CANDIDATES)
    assert shared.source == "cache"
    np.testing.assert_array_equal(shared.logp, miss.logp)
    assert miss.latency_ms > shared.latency_ms > near.latency_ms


def test_different_candidates_are_a_miss(ray_session):
    client = PriorClient(prior_config("client-guard", audit_rate=0.0))
    client.request(STATE, CANDIDATES)
    assert client.request(STATE, CANDIDATES[:2]).source == "llm"


def test_semantic_hits_are_audited(ray_session):
    client = PriorClient(prior_config("client-audit", threshold=0.8, audit_rate=1.0, near_capacity=0))
    client.request(STATE, CANDIDATES)
    hit = client.request(STATE + " It is quiet.", CANDIDATES)
    assert hit.source == "cache" and not hit.exact
    audits, deadline = [], time.monotonic() + 120
    while not audits and time.monotonic() < deadline:  # the audit's LLM call runs in the background
        audits += client.request(STATE, CANDIDATES).audits  # exact hits: not audited, but collect
        time.sleep(0.05)
    assert len(audits) == 1 and audits[0].kl >= 0.0 and audits[0].similarity >= 0.8


def test_llm_timeout_falls_back_to_a_uniform_prior(ray_session):
    cfg = prior_config("client-timeout", audit_rate=0.0)
    cfg.llm.timeout_s = 1e-4
    cfg.llm.max_batch = 3  # a separate pool actor, so the shared one keeps its counters
    result = PriorClient(cfg).request(STATE + " Nobody waits.", CANDIDATES)
    assert result.source == "fallback"
    np.testing.assert_allclose(np.exp(result.logp), 1 / 3)


def test_audits_reach_the_shared_entry_and_remapped_hits_serve_subsets(ray_session):
    import ray

    from priorcache.platform.prior_client import connect

    cfg = prior_config("client-per-entry", threshold=0.8, audit_rate=1.0, near_capacity=0, per_entry=True,
                       candidates="remap")
    client = PriorClient(cfg)
    full = client.request(STATE, CANDIDATES)
    subset = client.request(STATE, CANDIDATES[:2])  # same text, fewer commands: remapped, not a miss
    assert subset.source == "cache"
    np.testing.assert_allclose(np.exp(subset.logp), np.exp(full.logp[:2]) / np.exp(full.logp[:2]).sum())
    client.request(STATE + " It is quiet.", CANDIDATES)  # a semantic hit
    audits = client.finish_audits(wait_s=120)
    cache, _ = connect(cfg)
    deadline = time.monotonic() + 30  # the report to the actor is fire-and-forget
    while ray.get(cache.stats.remote())["audits"] < len(audits) and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = ray.get(cache.stats.remote())
    assert len(audits) >= 1 and stats["audits"] == len(audits) and stats["remapped_hits"] >= 1
