"""ProposalCache: exact keys, LRU capacity, the `off` mode, and keys that cover the guards."""

from priorcache.platform.cache.proposals import ProposalCache, proposal_key


def test_exact_lookup_and_lru_eviction():
    cache = ProposalCache(capacity=2)
    cache.insert("a", ("q1", "q2"))
    cache.insert("b", ("q3",))
    assert cache.lookup("a") == ("q1", "q2")  # "a" is now the most recently used
    cache.insert("c", ("q4",))
    assert cache.lookup("b") is None and cache.lookup("a") == ("q1", "q2") and len(cache) == 2
    assert (cache.stats.proposal_lookups, cache.stats.proposal_hits) == (3, 2)


def test_disabled_cache_stores_nothing_and_configure_shrinks():
    cache = ProposalCache(capacity=3, enabled=False)
    cache.insert("a", ("q",))
    assert cache.lookup("a") is None
    cache.configure(capacity=3, enabled=True)
    for key in "abc":
        cache.insert(key, (key,))
    cache.configure(capacity=1, enabled=True)
    assert len(cache) == 1 and cache.lookup("c") == ("c",)
    cache.clear()
    assert len(cache) == 0


def test_key_covers_model_prompt_opening_count_and_state():
    base = ("gemma", "webshop-v1/mean-T1-mix0", "search[", 3, "Instruction: x\nPage: search")
    keys = {proposal_key(*base)}
    for i, changed in enumerate(("other", "webshop-v2/mean-T1-mix0", "click[", 4, "Instruction: y\nPage: search")):
        variant = list(base)
        variant[i] = changed
        keys.add(proposal_key(*variant))
    assert len(keys) == 6
