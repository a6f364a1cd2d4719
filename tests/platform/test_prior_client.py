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


def test_a_semantic_hit_stays_semantic_when_asked_again(ray_session):
    """The near-cache copies exact hits only: a neighbour's answer copied under this text would
    come back as an exact hit, unaudited and unflattened."""
    cfg = prior_config("client-semantic-again", threshold=0.8, audit_rate=0.0)
    first = PriorClient(cfg)
    first.request(STATE, CANDIDATES)
    second = PriorClient(cfg, embedder=first.embedder)  # an empty near-cache: the actor answers
    for _ in range(2):
        hit = second.request(STATE + " It is quiet.", CANDIDATES)
        assert hit.source == "cache" and not hit.exact


def test_the_temperature_flattens_semantic_hits_only(ray_session):
    """The meta-optimizer's temperature hedges against wrong semantic hits; the LLM's answers
    and exact hits carry no cache error and are served as the LLM gave them."""
    import ray

    from priorcache.platform.logprob import log_softmax
    from priorcache.platform.prior_client import connect

    cfg = prior_config("client-temperature", threshold=0.8, audit_rate=0.0, near_capacity=0)
    client = PriorClient(cfg)
    first = client.request(STATE, CANDIDATES)  # before the change: the LLM's prior as stored
    cache, _ = connect(cfg)
    ray.get(cache.set_params.remote(temperature=2.0))
    exact = client.request(STATE, CANDIDATES)
    assert exact.exact
    np.testing.assert_array_equal(exact.logp, first.logp)
    semantic = client.request(STATE + " It is quiet.", CANDIDATES)
    assert semantic.source == "cache" and not semantic.exact
    np.testing.assert_allclose(semantic.logp, log_softmax(first.logp, 2.0))
    fresh = client.request("Goal: open the chest.\nYou are in a cellar. A chest stands here.", CANDIDATES)
    assert fresh.source == "llm"
    stored = client.request("Goal: open the chest.\nYou are in a cellar. A chest stands here.", CANDIDATES)
    assert stored.exact
    np.testing.assert_array_equal(fresh.logp, stored.logp)


def test_llm_timeout_falls_back_to_the_configured_prior_and_is_not_cached(ray_session):
    cfg = prior_config("client-timeout", audit_rate=0.0)
    cfg.llm.timeout_s = 1e-4
    cfg.llm.fallback = "uniform"
    cfg.llm.max_batch = 3  # a separate pool actor, so the shared one keeps its counters
    client = PriorClient(cfg)
    result = client.request(STATE + " Nobody waits.", CANDIDATES)
    assert result.source == "fallback"
    np.testing.assert_allclose(np.exp(result.logp), 1 / 3)
    assert client.request(STATE + " Nobody waits.", CANDIDATES).source == "fallback"  # not a hit


def test_requests_go_on_while_the_cache_actor_restarts_from_its_snapshot(ray_session, tmp_path):
    import ray

    from priorcache.platform.cache.persist import load_snapshot
    from priorcache.platform.prior_client import connect

    snapshot = tmp_path / "cache_snapshot.npz"
    cfg = prior_config("client-restart", mode="exact", audit_rate=0.0, near_capacity=0,
                       snapshot_path=str(snapshot), snapshot_every_s=0.1)
    client = PriorClient(cfg)
    states = [f"{STATE} Step {i}." for i in range(3)]
    assert [client.request(s, CANDIDATES).source for s in states] == ["llm"] * 3
    deadline = time.monotonic() + 30
    while not (snapshot.is_file() and len(load_snapshot(snapshot)["text_hash"]) == 3):
        assert time.monotonic() < deadline, "the cache actor wrote no snapshot"
        time.sleep(0.05)
    cache, _ = connect(cfg)
    ray.kill(cache, no_restart=False)
    # The requests wait out the restart; the restarted actor answers them from its snapshot.
    assert [client.request(s, CANDIDATES).source for s in states] == ["cache"] * 3
    assert client.request(STATE + " Step 3.", CANDIDATES).source == "llm"


def test_the_fallback_prior_is_counted_in_the_run_metrics():
    from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

    from priorcache.algorithms.prior_metrics import PriorMetricsCallback
    from priorcache.metrics import collect_iteration_metrics

    logger = MetricsLogger()
    for source in ("llm", "fallback", "near", "fallback"):
        PriorMetricsCallback._log_prior({"prior_source": source, "prior_exact": source == "near",
                                         "prior_similarity": 1.0, "prior_latency_ms": 1.0, "prior_audits": [],
                                         "prior_audit_similarities": []}, logger)
    metrics = collect_iteration_metrics({"env_runners": logger.reduce()}, None, None, wall_time_s=1.0)
    assert (metrics["prior_fallbacks"], metrics["prior_requests"]) == (2, 4)


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


WEBSHOP_STATE = ("Instruction: i need a long lasting red lipstick, and price lower than 20.00 dollars\n"
                 "Page: search")


def test_search_proposals_come_from_the_llm_once_then_from_the_cache(ray_session):
    cfg = prior_config("client-proposals", audit_rate=0.0)
    cfg.llm.prompt = "webshop-v1"
    client = PriorClient(cfg)
    before = ray_session.get(client._pool.stats.remote())["llm_proposals"]  # the pool is shared per LLM config
    queries = client.propose(WEBSHOP_STATE, "search[", 3)
    assert 1 <= len(queries) <= 3 and len(set(queries)) == len(queries)
    assert all(q and "]" not in q and "\n" not in q for q in queries)
    print("proposed:", queries)
    # Another client (another env runner) gets the same proposals from the shared cache actor.
    assert PriorClient(cfg, embedder=client.embedder).propose(WEBSHOP_STATE, "search[", 3) == queries
    pool_stats = ray_session.get(client._pool.stats.remote())
    cache_stats = ray_session.get(client._cache.stats.remote())
    assert pool_stats["llm_proposals"] - before == 1
    assert (cache_stats["proposal_lookups"], cache_stats["proposal_hits"]) == (2, 1)


def test_uncached_proposals_ask_the_llm_every_time(ray_session):
    cfg = prior_config("client-proposals-off", mode="off")
    cfg.llm.prompt = "webshop-v1"
    client = PriorClient(cfg)
    before = ray_session.get(client._pool.stats.remote())["llm_proposals"]  # the pool is shared per LLM config
    first = client.propose(WEBSHOP_STATE, "search[", 2)
    assert client.propose(WEBSHOP_STATE, "search[", 2) == first  # greedy: the same answer
    assert ray_session.get(client._pool.stats.remote())["llm_proposals"] - before == 2


def test_keyed_hits_serve_other_texts_under_the_key_unless_the_top_command_is_touched(ray_session):
    # the strict gate (no answer passes as decisive): the real prior's answer may lead by any margin
    client = PriorClient(prior_config("client-keyed", mode="keyed", audit_rate=1.0, near_capacity=0,
                                      decisive_margin=float("inf")))
    key = "A brass key lies on the floor."
    miss = client.request(STATE, CANDIDATES, key)
    assert miss.source == "llm"
    # "hall" is named by no command: the stored answer serves the corridor (and is audited)
    corridor = STATE.replace("hall", "corridor")
    hit = client.request(corridor, CANDIDATES, key)
    assert hit.source == "cache" and not hit.exact and 0.0 < hit.similarity < 1.0
    np.testing.assert_array_equal(hit.logp, miss.logp)
    # the corridor says a word of the stored top command once more: the LLM is asked
    top_word = CANDIDATES[int(np.argmax(miss.logp))].split()[-1]
    touched = client.request(f"{corridor} {top_word}.", CANDIDATES, key)
    other_key = client.request(corridor, CANDIDATES, "Another feedback.")
    assert (touched.source, other_key.source) == ("llm", "llm")
    audits = touched.audits + other_key.audits + client.finish_audits(wait_s=120)
    assert len(audits) == 1 and audits[0].kl >= 0.0


def test_keyed_decisive_answers_pass_the_gate_when_configured(ray_session):
    # a margin of 0 nats makes every answer decisive: the touched text is served too
    client = PriorClient(prior_config("client-keyed-decisive", mode="keyed", audit_rate=0.0, near_capacity=0,
                                      decisive_margin=0.0))
    key = "A brass key lies on the floor."
    miss = client.request(STATE, CANDIDATES, key)
    top_word = CANDIDATES[int(np.argmax(miss.logp))].split()[-1]
    touched = client.request(f"{STATE} {top_word}.", CANDIDATES, key)
    assert touched.source == "cache" and not touched.exact
    np.testing.assert_array_equal(touched.logp, miss.logp)
