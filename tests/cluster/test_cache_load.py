"""The cache load test's core (benchmarks/cache_load.py) on real Ray: tiny N x M, every answer right."""

import numpy as np
import pytest

from priorcache.platform.cache.core import Hit


@pytest.fixture(scope="module")
def cache_load(load_benchmark):
    return load_benchmark("cache_load")


def test_concurrent_clients_get_every_answer_right(ray_session, cache_load):
    workload = cache_load.make_workload(entries=200)
    cache = cache_load.start_cache(workload, "test-load")
    clients = cache_load.start_clients(3, "test-load", workload)
    for batch in (16, 1):
        row = cache_load.run_load(cache, clients, workload, calls=5, batch=batch)
        assert row.lookups == 3 * 5 * batch == row.hits + row.misses
        assert (row.lost, row.mismatched, row.uncounted) == (0, 0, 0)
        assert row.lookups_per_s > 0 and row.call_p99_ms >= row.call_p50_ms > 0
    assert ray_session.get(cache.stats.remote())["size"] == 200


def test_the_check_catches_lost_and_wrong_answers(cache_load):
    logps = np.log(np.array([[0.5, 0.5], [0.9, 0.1]]))
    right, wrong = Hit(logp=logps[0], similarity=1.0, exact=True), Hit(logp=logps[1], similarity=1.0, exact=True)
    expected = np.array([0, 0, cache_load.MISS, 1])
    assert cache_load.check([right, None, wrong, right], expected, logps) == (3, 1, 1, 2)
    assert cache_load.check([right], expected, logps)[2] == 3  # answers missing from the reply are lost
