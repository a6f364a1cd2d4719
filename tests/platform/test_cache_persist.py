"""Cache snapshots on disk: round trip through the file, bad files named with the config key."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from priorcache.platform.cache.core import CacheParams, Guard, SemanticCache, hash_text
from priorcache.platform.cache.persist import SnapshotError, load_snapshot, save_snapshot

DIM = 4


def test_file_round_trip_serves_the_same_priors(tmp_path):
    source = SemanticCache(CacheParams(candidates="remap"), DIM)
    rng = np.random.default_rng(0)
    states = []
    for i in range(5):
        v = rng.normal(size=DIM).astype(np.float32)
        v /= np.linalg.norm(v)
        cands = tuple(f"cmd {j}" for j in range(i + 2))  # ragged candidate sets
        logp = np.log(rng.dirichlet(np.ones(len(cands))))
        source.insert(v, hash_text(f"s{i}"), Guard.for_candidates("m", "p", cands), logp, cands)
        states.append((v, f"s{i}", cands, logp))
    path = save_snapshot(source.snapshot(), tmp_path / "cache_snapshot.npz")
    target = SemanticCache(CacheParams(candidates="remap"), DIM)
    target.restore(load_snapshot(path))
    for v, text, cands, logp in states:
        hit = target.lookup(v, hash_text(text), Guard.for_candidates("m", "p", cands), cands)
        assert hit is not None and hit.exact
        np.testing.assert_allclose(hit.logp, logp)


def test_empty_cache_round_trip(tmp_path):
    path = save_snapshot(SemanticCache(CacheParams(), DIM).snapshot(), tmp_path / "empty.npz")
    assert SemanticCache(CacheParams(), DIM).restore(load_snapshot(path)) == 0


def test_other_model_snapshot_loads_but_never_hits(tmp_path):
    source = SemanticCache(CacheParams(), DIM)
    v = np.array([1, 0, 0, 0], np.float32)
    source.insert(v, hash_text("s"), Guard.for_candidates("old-model", "p", ["a"]), np.zeros(1), ("a",))
    target = SemanticCache(CacheParams(), DIM)
    target.restore(load_snapshot(save_snapshot(source.snapshot(), tmp_path / "s.npz")))
    assert len(target) == 1
    assert target.lookup(v, hash_text("s"), Guard.for_candidates("new-model", "p", ["a"]), ("a",)) is None


def test_not_a_snapshot_names_the_config_key(tmp_path):
    bad = tmp_path / "notes.npz"
    bad.write_text("hello")
    with pytest.raises(SnapshotError, match="prior.cache.warm_start"):
        load_snapshot(bad)


def test_concurrent_writers_of_one_file_leave_a_whole_snapshot(tmp_path):
    # The cache actor's periodic snapshot and the driver's final one may write one file at once.
    cache = SemanticCache(CacheParams(), DIM)
    for i in range(50):
        cache.insert(np.eye(DIM, dtype=np.float32)[i % DIM], hash_text(f"s{i}"),
                     Guard.for_candidates("m", "p", ["a", "b"]), np.log([0.5, 0.5]))
    path = tmp_path / "cache_snapshot.npz"
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: save_snapshot(cache.snapshot(), path), range(16)))
    assert len(load_snapshot(path)["text_hash"]) == 50
    assert [p.name for p in tmp_path.iterdir()] == ["cache_snapshot.npz"]


def test_keyed_round_trip_keeps_what_the_gate_reads_and_older_snapshots_still_load(tmp_path):
    commands = ("go to fridge 1", "open cabinet 1")
    guard, logp = Guard.for_candidates("m", "p", commands), np.log([0.8, 0.2])
    stored, fresh = "You arrive at sinkbasin 1.\n\nNothing happens.", "You arrive at drawer 1.\n\nNothing happens."
    v = np.array([1, 0, 0, 0], np.float32)
    source = SemanticCache(CacheParams(mode="keyed"), DIM)
    source.insert(v, hash_text(stored), guard, logp, commands, stored, hash_text("Nothing happens."))
    path = save_snapshot(source.snapshot(), tmp_path / "keyed.npz")
    target = SemanticCache(CacheParams(mode="keyed"), DIM)
    target.restore(load_snapshot(path))
    hit = target.lookup(v, hash_text(fresh), guard, commands, fresh, hash_text("Nothing happens."))
    assert hit is not None and not hit.exact
    np.testing.assert_allclose(hit.logp, logp)
    # a snapshot written before keyed caches (no texts, no keys): its entries serve their own text only
    with np.load(path) as data:
        older = {name: data[name] for name in data.files if name not in ("state_text", "key_hash")}
    np.savez_compressed(tmp_path / "older.npz", **older)
    target = SemanticCache(CacheParams(mode="keyed"), DIM)
    assert target.restore(load_snapshot(tmp_path / "older.npz")) == 1
    assert target.lookup(v, hash_text(fresh), guard, commands, fresh, hash_text("Nothing happens.")) is None
    assert target.lookup(v, hash_text(stored), guard, commands, stored, hash_text("Nothing happens.")).exact
