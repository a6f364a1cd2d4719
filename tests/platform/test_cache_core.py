"""Semantics of the pure cache core: threshold, capacity/eviction, refresh, guards, modes."""

import numpy as np
import pytest

from priorcache.platform.cache.core import CacheParams, Guard, SemanticCache, hash_text

DIM = 8
GUARD = Guard.for_candidates("model-a", "tw-v1", ["go north", "take key"])
PRIOR = np.log(np.array([0.75, 0.25]))


def unit(*components: float) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[: len(components)] = components
    return v / np.linalg.norm(v)


def cache(**params) -> SemanticCache:
    return SemanticCache(CacheParams(**params), DIM)


def test_hit_needs_cosine_at_least_threshold():
    c = cache(threshold=0.9)
    c.insert(unit(1, 0), hash_text("a"), GUARD, PRIOR)
    close = unit(1, 0.3)  # cosine 0.958
    far = unit(1, 0.6)  # cosine 0.857
    hit = c.lookup(close, hash_text("b"), GUARD)
    assert hit is not None and not hit.exact and hit.similarity == pytest.approx(0.958, abs=1e-3)
    np.testing.assert_allclose(hit.logp, PRIOR)
    assert c.lookup(far, hash_text("c"), GUARD) is None
    assert (c.stats.lookups, c.stats.hits) == (2, 1)


def test_closest_entry_wins():
    c = cache(threshold=0.5)
    c.insert(unit(1, 0), hash_text("a"), GUARD, np.log([0.9, 0.1]))
    c.insert(unit(0, 1), hash_text("b"), GUARD, np.log([0.1, 0.9]))
    hit = c.lookup(unit(0.2, 1), hash_text("q"), GUARD)
    np.testing.assert_allclose(hit.logp, np.log([0.1, 0.9]))


@pytest.mark.parametrize("other", [
    Guard("model-b", GUARD.prompt_version, GUARD.candidates_hash),
    Guard(GUARD.model_id, "tw-v2", GUARD.candidates_hash),
    Guard.for_candidates("model-a", "tw-v1", ["take key", "go north"]),
])
def test_guard_mismatch_is_a_miss_even_for_identical_text(other):
    c = cache()
    c.insert(unit(1), hash_text("a"), GUARD, PRIOR)
    assert c.lookup(unit(1), hash_text("a"), other) is None
    assert c.lookup(unit(1), hash_text("a"), GUARD) is not None


def test_capacity_evicts_least_recently_used():
    c = cache(capacity=2, threshold=0.99)
    c.insert(unit(1, 0, 0), hash_text("a"), GUARD, PRIOR)
    c.insert(unit(0, 1, 0), hash_text("b"), GUARD, PRIOR)
    assert c.lookup(unit(1, 0, 0), hash_text("a"), GUARD) is not None  # a is now most recent
    c.insert(unit(0, 0, 1), hash_text("c"), GUARD, PRIOR)  # evicts b
    assert len(c) == 2 and c.stats.evictions == 1
    assert c.lookup(unit(0, 1, 0), hash_text("b"), GUARD) is None
    assert c.lookup(unit(1, 0, 0), hash_text("a"), GUARD) is not None


def test_refresh_drops_an_entry_after_r_hits():
    c = cache(refresh=2)
    c.insert(unit(1), hash_text("a"), GUARD, PRIOR)
    assert c.lookup(unit(1), hash_text("a"), GUARD) is not None
    assert c.lookup(unit(1), hash_text("a"), GUARD) is not None
    assert c.lookup(unit(1), hash_text("a"), GUARD) is None  # third use: re-score
    assert c.stats.refreshes == 1 and len(c) == 0


def test_exact_mode_ignores_similar_texts():
    c = cache(mode="exact")
    c.insert(unit(1, 0), hash_text("a"), GUARD, PRIOR)
    assert c.lookup(unit(1, 0), hash_text("a almost"), GUARD) is None
    hit = c.lookup(unit(0, 1), hash_text("a"), GUARD)  # same text: hit whatever the vector
    assert hit is not None and hit.exact


def test_off_mode_never_hits_or_stores():
    c = cache(mode="off")
    c.insert(unit(1), hash_text("a"), GUARD, PRIOR)
    assert len(c) == 0
    assert c.lookup(unit(1), hash_text("a"), GUARD) is None
    assert c.stats.lookups == 1


def test_set_params_at_run_time_shrinks_and_changes_threshold():
    c = cache(capacity=4, threshold=0.99)
    for i in range(4):
        c.insert(unit(*([0] * i + [1])), hash_text(str(i)), GUARD, PRIOR)
    c.lookup(unit(1), hash_text("0"), GUARD)  # keep entry 0 fresh
    c.set_params(CacheParams(capacity=2, threshold=0.5))
    assert len(c) == 2
    assert c.lookup(unit(1), hash_text("0"), GUARD) is not None
    assert c.lookup(unit(1, 0.5), hash_text("new"), GUARD) is not None  # cosine 0.89 >= 0.5 now
    c.set_params(CacheParams(capacity=8, threshold=0.5))
    c.insert(unit(0, 0, 0, 0, 1), hash_text("x"), GUARD, PRIOR)
    assert len(c) == 3


@pytest.mark.parametrize("bad", [dict(mode="fuzzy"), dict(capacity=0), dict(threshold=0.0), dict(refresh=-1)])
def test_invalid_params_are_rejected(bad):
    with pytest.raises(ValueError):
        CacheParams(**bad)
