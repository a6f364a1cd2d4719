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


def test_similarity_never_exceeds_one_for_float32_rounding():
    rng = np.random.default_rng(0)
    # A float32 unit vector whose dot product with itself rounds above 1.
    over = next(v for v in (unit(*rng.normal(size=DIM)) for _ in range(10_000)) if float(v @ v) > 1.0)
    c = cache(threshold=0.9)
    c.insert(over, hash_text("a"), GUARD, PRIOR)
    hit = c.lookup(over, hash_text("b"), GUARD)
    assert hit is not None and hit.similarity == 1.0


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


CANDS = ("go north", "take key", "open door")
REMAP_GUARD = Guard.for_candidates("model-a", "tw-v1", CANDS)


def test_remap_reuses_scores_per_command_and_renormalises():
    c = cache(candidates="remap", threshold=0.9)
    scored = np.log(np.array([0.5, 0.3, 0.2]))
    c.insert(unit(1, 0), hash_text("a"), REMAP_GUARD, scored, CANDS)
    wanted = ("open door", "go north")  # a subset, reordered
    hit = c.lookup(unit(1, 0.1), hash_text("b"), Guard.for_candidates("model-a", "tw-v1", wanted), wanted)
    np.testing.assert_allclose(np.exp(hit.logp), [0.2 / 0.7, 0.5 / 0.7])
    assert not hit.exact and c.stats.remapped_hits == 1
    # The same candidates in `same` matching would miss: the guard differs.
    same = cache(threshold=0.9)
    same.insert(unit(1, 0), hash_text("a"), REMAP_GUARD, scored, CANDS)
    assert same.lookup(unit(1, 0.1), hash_text("b"), Guard.for_candidates("model-a", "tw-v1", wanted), wanted) is None


def test_remap_needs_coverage_and_fills_unscored_commands_with_the_lowest_score():
    scored = np.log(np.array([0.5, 0.3, 0.2]))
    wanted = ("go north", "take key", "eat apple")
    guard = Guard.for_candidates("model-a", "tw-v1", wanted)
    strict = cache(candidates="remap")
    strict.insert(unit(1), hash_text("a"), REMAP_GUARD, scored, CANDS)
    assert strict.lookup(unit(1), hash_text("a"), guard, wanted) is None  # 2/3 covered < 1.0
    loose = cache(candidates="remap", min_coverage=0.6)
    loose.insert(unit(1), hash_text("a"), REMAP_GUARD, scored, CANDS)
    hit = loose.lookup(unit(1), hash_text("a"), guard, wanted)
    np.testing.assert_allclose(np.exp(hit.logp), np.array([0.5, 0.3, 0.2]) / 1.0)
    assert not hit.exact  # same text, other commands: audited like a semantic hit


def test_remap_other_model_still_misses():
    c = cache(candidates="remap")
    c.insert(unit(1), hash_text("a"), REMAP_GUARD, np.log([0.5, 0.3, 0.2]), CANDS)
    other = Guard.for_candidates("model-b", "tw-v1", CANDS)
    assert c.lookup(unit(1), hash_text("a"), other, CANDS) is None


def test_per_entry_threshold_rises_on_a_false_hit_and_relaxes_on_good_ones():
    c = cache(threshold=0.9, per_entry=True, kl_tolerance=0.1)
    c.insert(unit(1, 0), hash_text("a"), GUARD, PRIOR)
    query = unit(1, 0.3)  # cosine 0.958
    hit = c.lookup(query, hash_text("q"), GUARD)
    assert hit is not None and hit.entry == hash_text("a")
    c.record_audit(hit.entry, GUARD, hit.similarity, kl=0.5)  # a false hit at 0.958
    assert c.lookup(query, hash_text("q"), GUARD) is None
    assert c.lookup(unit(1, 0.1), hash_text("r"), GUARD) is not None  # closer still hits
    for _ in range(20):  # cheap audits lower it, but never back to the failed similarity
        c.record_audit(hit.entry, GUARD, 0.99, kl=0.0)
    assert c.lookup(query, hash_text("q"), GUARD) is None
    assert (c.stats.audits, c.stats.false_hits) == (21, 1)


def test_per_entry_thresholds_are_per_entry():
    c = cache(threshold=0.9, per_entry=True)
    c.insert(unit(1, 0, 0), hash_text("a"), GUARD, PRIOR)
    c.insert(unit(0, 0, 1), hash_text("b"), GUARD, PRIOR)
    c.record_audit(hash_text("a"), GUARD, 0.96, kl=1.0)
    assert c.lookup(unit(1, 0.3, 0), hash_text("q"), GUARD) is None  # a: now needs > 0.96
    assert c.lookup(unit(0, 0.3, 1), hash_text("r"), GUARD) is not None  # b: still 0.9


def test_global_threshold_ignores_audits():
    c = cache(threshold=0.9)
    c.insert(unit(1, 0), hash_text("a"), GUARD, PRIOR)
    c.record_audit(hash_text("a"), GUARD, 0.958, kl=1.0)
    assert c.lookup(unit(1, 0.3), hash_text("q"), GUARD) is not None


def test_snapshot_restore_round_trip_keeps_entries_order_and_thresholds():
    c = cache(capacity=4, threshold=0.9, per_entry=True)
    for i, name in enumerate("abc"):
        v = np.zeros(DIM, np.float32)
        v[i] = 1
        c.insert(v, hash_text(name), GUARD, PRIOR)
    c.record_audit(hash_text("c"), GUARD, 0.97, kl=1.0)
    c.lookup(unit(1), hash_text("a"), GUARD)  # a becomes most recent
    d = cache(capacity=2, threshold=0.9, per_entry=True)
    assert d.restore(c.snapshot()) == 2  # the two most recent: c and a
    assert d.lookup(unit(0, 1, 0), hash_text("b"), GUARD) is None
    assert d.snapshot()["threshold"][0] == pytest.approx(0.9701)
    assert d.lookup(unit(1), hash_text("a"), GUARD) is not None


def test_switching_to_remap_keeps_entries():
    c = cache()
    c.insert(unit(1), hash_text("a"), REMAP_GUARD, np.log([0.5, 0.3, 0.2]), CANDS)
    c.set_params(CacheParams(candidates="remap"))
    wanted = ("take key", "go north")
    assert c.lookup(unit(1), hash_text("a"), Guard.for_candidates("model-a", "tw-v1", wanted), wanted) is not None


# keyed: exact match on the state's key, the relevance gate on the rest of the text
COMMANDS = ("go to fridge 1", "open cabinet 1")
KEYED_GUARD = Guard.for_candidates("model-a", "alfworld-v1", COMMANDS)
TO_FRIDGE, TO_CABINET = np.log([0.55, 0.45]), np.log([0.45, 0.55])  # close calls (0.2 nats)
FEEDBACK = "Nothing happens."
SEEN_NOTHING = f"Your task is to: find a mug.\nYou are at the sinkbasin 1.\n\n{FEEDBACK}"


def keyed_insert(c: SemanticCache, text: str, logp: np.ndarray, key: str = FEEDBACK, v=None) -> None:
    c.insert(unit(1) if v is None else v, hash_text(text), KEYED_GUARD, logp, COMMANDS, text, hash_text(key))


def keyed_lookup(c: SemanticCache, text: str, key: str = FEEDBACK, v=None):
    return c.lookup(unit(1) if v is None else v, hash_text(text), KEYED_GUARD, COMMANDS, text, hash_text(key))


def test_keyed_serves_another_text_under_its_key_unless_it_differs_in_the_top_command():
    c = cache(mode="keyed")
    keyed_insert(c, SEEN_NOTHING, TO_FRIDGE)
    # the fresh text says more, but nothing about "fridge 1": the stored answer serves, with its cosine
    elsewhere = SEEN_NOTHING.replace("sinkbasin 1.", "sinkbasin 1.\nYou have looked in/on: drawer 1.")
    hit = keyed_lookup(c, elsewhere, v=unit(1, 0.3))
    assert hit is not None and not hit.exact and hit.similarity == pytest.approx(0.958, abs=1e-3)
    np.testing.assert_allclose(hit.logp, TO_FRIDGE)
    # "fridge" without its number is another word than "fridge 1"
    assert keyed_lookup(c, SEEN_NOTHING.replace("sinkbasin 1.", "sinkbasin 1. A fridge hums.")) is not None
    # the fridge was looked in meanwhile: the stored top command may no longer be the LLM's choice
    looked_in_fridge = SEEN_NOTHING.replace("sinkbasin 1.", "sinkbasin 1.\nYou have looked in/on: fridge 1.")
    assert keyed_lookup(c, looked_in_fridge) is None
    # another key never serves, whatever the text
    assert keyed_lookup(c, elsewhere, key="You open the drawer 1.") is None
    exact = keyed_lookup(c, SEEN_NOTHING)
    assert exact is not None and exact.exact
    assert (c.stats.lookups, c.stats.hits, c.stats.exact_hits) == (5, 3, 1)


def keyed_cache_with(text: str, logp: np.ndarray, **params) -> SemanticCache:
    c = cache(mode="keyed", **params)
    keyed_insert(c, text, logp)
    return c


def test_keyed_a_decisive_answer_serves_where_the_gate_would_refuse():
    looked_in_fridge = SEEN_NOTHING.replace("sinkbasin 1.", "sinkbasin 1.\nYou have looked in/on: fridge 1.")
    decisive = np.log([0.65, 0.35])  # the fridge leads by 0.62 nats
    np.testing.assert_allclose(keyed_lookup(keyed_cache_with(SEEN_NOTHING, decisive), looked_in_fridge).logp, decisive)
    assert keyed_lookup(keyed_cache_with(SEEN_NOTHING, TO_FRIDGE), looked_in_fridge) is None  # a close call (0.2)
    assert keyed_lookup(keyed_cache_with(SEEN_NOTHING, decisive, decisive_margin=0.7), looked_in_fridge) is None
    assert keyed_lookup(keyed_cache_with(SEEN_NOTHING, decisive, decisive_margin=float("inf")),
                        looked_in_fridge) is None  # the strict gate
    with pytest.raises(ValueError, match="decisive_margin"):
        cache(mode="keyed", decisive_margin=-1.0)


def test_keyed_serves_the_latest_entry_the_gate_lets_through():
    c = cache(mode="keyed")
    keyed_insert(c, SEEN_NOTHING, TO_FRIDGE)
    looked_in_fridge = SEEN_NOTHING.replace("sinkbasin 1.", "sinkbasin 1.\nYou have looked in/on: fridge 1.")
    keyed_insert(c, looked_in_fridge, TO_CABINET)
    # later and untouched in "cabinet 1": the second answer serves
    np.testing.assert_allclose(keyed_lookup(c, looked_in_fridge + " Quiet.").logp, TO_CABINET)
    # a text naming "cabinet 1" once more fails the second entry's gate; the first's ("fridge 1") passes
    cabinet_seen = SEEN_NOTHING.replace("sinkbasin 1.", "sinkbasin 1. The cabinet 1 is closed.")
    np.testing.assert_allclose(keyed_lookup(c, cabinet_seen).logp, TO_FRIDGE)


def test_keyed_without_a_key_is_exact_matching_and_needs_the_texts():
    c = cache(mode="keyed")
    c.insert(unit(1), hash_text(SEEN_NOTHING), KEYED_GUARD, TO_FRIDGE, COMMANDS, SEEN_NOTHING)
    assert c.lookup(unit(1), hash_text(SEEN_NOTHING + " "), KEYED_GUARD, COMMANDS, SEEN_NOTHING + " ") is None
    assert c.lookup(unit(1), hash_text(SEEN_NOTHING), KEYED_GUARD, COMMANDS, SEEN_NOTHING).exact
    with pytest.raises(ValueError, match="mode='keyed' needs the candidate and state texts"):
        c.lookup(unit(1), hash_text(SEEN_NOTHING), KEYED_GUARD, COMMANDS)


def test_keyed_eviction_and_overwrite_keep_the_key_index_in_step():
    c = cache(mode="keyed", capacity=2)
    keyed_insert(c, SEEN_NOTHING, TO_FRIDGE)
    keyed_insert(c, SEEN_NOTHING + " A", TO_CABINET, key="other")
    keyed_insert(c, SEEN_NOTHING, TO_CABINET)  # overwrites its own row: still one entry for that text
    assert len(c) == 2
    np.testing.assert_allclose(keyed_lookup(c, SEEN_NOTHING + " B").logp, TO_CABINET)
    keyed_insert(c, SEEN_NOTHING + " C", TO_FRIDGE, key="third")  # evicts the LRU row (key "other")
    assert keyed_lookup(c, SEEN_NOTHING + " D", key="other") is None
    assert keyed_lookup(c, SEEN_NOTHING + " E") is not None
