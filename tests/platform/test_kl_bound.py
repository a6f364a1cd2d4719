"""The KL bound: L from earlier windows only, its quantile, the bound formula, and its validity."""

import numpy as np
import pytest

from priorcache.platform.cache.kl_bound import KLBoundEstimator, measured_kl_per_hit


def test_lipschitz_comes_from_earlier_windows_only():
    est = KLBoundEstimator(quantile=0.5, min_audits=3)
    est.add_audits([0.1, 0.2, 0.3], [0.9, 0.9, 0.9])
    assert est.lipschitz is None and est.bound(1.0, 10) is None  # this window's audits do not count yet
    est.end_window()
    assert est.lipschitz == pytest.approx(2.0)
    est.add_audits([100.0] * 5, [0.9] * 5)
    assert est.lipschitz == pytest.approx(2.0)  # the current window is what the bound predicts
    est.end_window()
    assert est.lipschitz == pytest.approx(100.0 / 0.1)


def test_lipschitz_is_the_quantile_of_kl_over_distance():
    est = KLBoundEstimator(quantile=0.95, min_audits=5)
    ratios = np.arange(1.0, 22.0)  # 21 values: the 0.95 quantile sits exactly on the 20th
    est.add_audits((ratios * 0.2).tolist(), [0.8] * 21)
    est.end_window()
    assert est.lipschitz == pytest.approx(20.0)


def test_bound_formula():
    est = KLBoundEstimator(quantile=1.0, min_audits=1)
    est.add_audits([0.3], [0.9])  # KL / d = 3
    est.end_window()
    assert est.bound(semantic_distance_sum=0.5, hits=20) == pytest.approx(3.0 * 0.5 / 20)
    assert est.bound(semantic_distance_sum=0.0, hits=20) == 0.0  # only exact hits
    assert est.bound(semantic_distance_sum=0.0, hits=0) == 0.0
    assert KLBoundEstimator().bound(0.0, 0) == 0.0  # no hit costs nothing, even uncalibrated
    with pytest.raises(ValueError):
        est.bound(-1.0, 3)


def test_audits_at_distance_zero_are_skipped():
    est = KLBoundEstimator(quantile=1.0, min_audits=2)
    est.add_audits([0.01, 0.02, 0.2], [1.0, 1.0 - 1e-8, 0.9])
    est.end_window()
    assert est.lipschitz is None  # one usable audit: the two at d ~ 0 would make L ~ infinite
    est.add_audits([0.1], [0.95])
    est.end_window()
    assert est.lipschitz == pytest.approx(2.0)
    with pytest.raises(ValueError):
        est.add_audits([0.1, 0.2], [0.9])


def test_measured_kl_per_hit():
    assert measured_kl_per_hit(0.08, semantic_hits=25, hits=100) == pytest.approx(0.02)
    assert measured_kl_per_hit(0.08, semantic_hits=0, hits=100) == 0.0
    assert measured_kl_per_hit(float("nan"), semantic_hits=0, hits=0) == 0.0
    with pytest.raises(ValueError):
        measured_kl_per_hit(0.1, semantic_hits=5, hits=4)


def test_bound_holds_when_kl_grows_linearly_with_distance():
    rng = np.random.default_rng(0)
    c = 2.0
    est = KLBoundEstimator(quantile=0.95, min_audits=5)
    for window in range(6):
        hits, semantic = 400, 150
        similarity = rng.uniform(0.85, 1.0, size=semantic)
        kl = c * (1.0 - similarity) * rng.uniform(0.5, 1.0, size=semantic)
        # Enough audits that their sample mean stays within the quantile's margin (0.975c vs 0.75c).
        audited = rng.choice(semantic, size=60, replace=False)
        bound = est.bound(float(np.sum(1.0 - similarity)), hits)
        measured = measured_kl_per_hit(float(kl[audited].mean()), semantic, hits)
        if window == 0:
            assert bound is None
        else:
            assert bound >= measured > 0
        est.add_audits(kl[audited].tolist(), similarity[audited].tolist())
        est.end_window()
    assert c * 0.9 <= est.lipschitz <= c
