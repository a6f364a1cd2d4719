"""The cache meta-optimizer's update rule on synthetic windows, and its metric arithmetic."""

import math

import numpy as np
import pytest

from priorcache.platform.cache.core import CacheParams
from priorcache.platform.cache.meta import CacheMetaOptimizer, MetaSignals, MetaUpdate, signals_from_metrics
from priorcache.platform.config import MetaConfig


def signals(kl: float | None = None, audits: int = 10, lookups: int = 1000, evictions: int = 0,
            return_mean: float = 1.0, td_error: float | None = None) -> MetaSignals:
    return MetaSignals(hit_rate=0.5, kl_semantic=kl, audits=audits, lookups=lookups, evictions=evictions,
                       size=100, return_mean=return_mean, td_error=td_error)


def optimizer(cfg: MetaConfig | None = None, **params) -> CacheMetaOptimizer:
    return CacheMetaOptimizer(cfg or MetaConfig(), CacheParams(**params))


def synthetic_kl(delta: float, rng: np.random.Generator) -> float:
    """KL per semantic hit grows as the threshold loosens; 0 above delta = 0.97."""
    return max(0.0, 0.4 * (0.97 - delta) / 0.1 + rng.normal(0.0, 0.005))


def run_synthetic(start: float, steps: int = 30) -> tuple[CacheMetaOptimizer, float]:
    rng = np.random.default_rng(0)
    opt = optimizer(MetaConfig(kl_budget=0.05), threshold=start)
    kl = float("nan")
    for _ in range(steps):
        delta = opt.params.threshold
        kl = synthetic_kl(delta, rng)
        hit_rate = 0.9 - 2.0 * (delta - 0.8)  # a looser threshold hits more
        opt.step(MetaSignals(hit_rate=hit_rate, kl_semantic=kl, audits=20, lookups=1000, evictions=0,
                             size=500, return_mean=1.0, td_error=None))
    return opt, synthetic_kl(opt.params.threshold, rng)


def test_threshold_tightens_until_kl_meets_the_budget():
    opt, kl = run_synthetic(start=0.90)
    assert opt.params.threshold > 0.93
    assert 0.05 / 2 <= kl <= 0.05 * 2


def test_threshold_loosens_while_kl_is_well_under_budget():
    opt, kl = run_synthetic(start=0.99, steps=3)
    assert opt.params.threshold < 0.99
    opt, kl = run_synthetic(start=0.99)
    assert 0.05 / 2 <= kl <= 0.05 * 2


def test_no_kl_driven_move_with_too_few_audits():
    few = MetaConfig().min_audits - 1
    opt = optimizer(threshold=0.9, refresh=8, temperature=2.0)
    for kl, audits in ((1.0, few), (0.0, few), (None, 50), (float("nan"), 50)):
        update = opt.step(signals(kl=kl, audits=audits))
        assert update.changes == {} and update.reasons == {}
        assert update.params == opt.params == CacheParams(threshold=0.9, refresh=8, temperature=2.0)


def test_capacity_grows_on_evictions_up_to_max_and_never_shrinks():
    cfg = MetaConfig(capacity_growth=1.5, max_capacity=2000)
    opt = optimizer(cfg, capacity=1000)
    update = opt.step(signals(evictions=11, lookups=1000))
    assert update.changes["capacity"] == (1000, 1500) and "capacity" in update.reasons
    assert opt.step(signals(evictions=10, lookups=1000)).changes == {}  # exactly 1%: not more
    assert opt.step(signals(evictions=500, lookups=1000)).params.capacity == 2000
    assert opt.step(signals(evictions=500, lookups=1000)).params.capacity == 2000
    assert opt.step(signals(evictions=0, lookups=0)).params.capacity == 2000
    above_max = optimizer(cfg, capacity=5000)
    assert above_max.step(signals(evictions=500, lookups=1000)).params.capacity == 5000


def test_refresh_turns_on_and_halves_over_budget_and_off_beyond_max():
    cfg = MetaConfig(kl_budget=0.05, min_refresh=4, max_refresh=32)
    opt = optimizer(cfg, refresh=0)
    over, under = signals(kl=0.2), signals(kl=0.0)  # g = 3 and g = -1
    assert opt.step(over).params.refresh == 4
    assert opt.step(over).params.refresh == 4  # not below min_refresh
    assert [opt.step(under).params.refresh for _ in range(4)] == [8, 16, 32, 0]
    assert opt.step(under).params.refresh == 0  # off stays off while under budget
    halving = optimizer(cfg, refresh=20)
    assert halving.step(over).params.refresh == 10
    assert optimizer(cfg, refresh=8).step(signals(kl=0.06)).params.refresh == 8  # g = 0.2: too small to act


def test_temperature_stays_between_1_and_max():
    cfg = MetaConfig(max_temperature=2.0, temperature_step=0.3)
    opt = optimizer(cfg)
    temperatures = [opt.step(signals(kl=1.0)).params.temperature for _ in range(20)]
    assert temperatures[0] > 1.0 and max(temperatures) == 2.0
    temperatures = [opt.step(signals(kl=0.0)).params.temperature for _ in range(20)]
    assert min(temperatures) == 1.0 and all(1.0 <= t <= 2.0 for t in temperatures)


def test_mode_off_changes_nothing_and_exact_only_capacity():
    wild = signals(kl=5.0, evictions=900, lookups=1000, return_mean=float("nan"))
    off = optimizer(mode="off")
    assert off.step(wild) == MetaUpdate(CacheParams(mode="off"), {}, {})
    exact = optimizer(mode="exact", refresh=8, temperature=1.5)
    update = exact.step(wild)
    assert set(update.changes) == {"capacity"}
    assert update.params == CacheParams(mode="exact", capacity=1500, refresh=8, temperature=1.5)


def test_nan_return_and_td_give_finite_params():
    opt = optimizer(threshold=0.9)
    for i in range(10):
        update = opt.step(signals(kl=0.01 if i % 2 else 0.3, return_mean=float("nan"), td_error=float("nan"),
                                  evictions=50))
        p = update.params
        assert all(math.isfinite(v) for v in (p.threshold, p.temperature, p.capacity, p.refresh))


def test_return_drop_after_loosening_tightens():
    opt = optimizer(threshold=0.95)
    first = opt.step(signals(kl=0.0, return_mean=1.0))
    assert first.params.threshold < 0.95  # loosened
    second = opt.step(signals(kl=0.0, return_mean=0.5))
    assert second.changes["threshold"] == (first.params.threshold,
                                           round(first.params.threshold + MetaConfig().threshold_step / 2, 4))
    assert "return fell" in second.reasons["threshold"]


def test_return_within_noise_after_loosening_keeps_loosening():
    opt = optimizer(threshold=0.95)
    for r in (1.0, 1.2, 0.8, 1.1):
        opt.step(signals(kl=0.0, return_mean=r))
    before = opt.params.threshold
    assert opt.step(signals(kl=0.0, return_mean=1.0)).params.threshold < before  # fell 0.1 < std 0.15


def test_rising_td_error_scales_loosening_down():
    calm, flux = optimizer(threshold=0.95), optimizer(threshold=0.95)
    calm.step(signals(kl=0.0, td_error=1.0))
    flux.step(signals(kl=0.0, td_error=1.0))
    calm_step = calm.params.threshold - calm.step(signals(kl=0.0, td_error=1.0)).params.threshold
    flux_step = flux.params.threshold - flux.step(signals(kl=0.0, td_error=3.0)).params.threshold
    assert flux_step == pytest.approx(calm_step / 3, abs=1e-4)  # s = 1 / (1 + 2)


def test_signals_from_metrics_takes_window_differences():
    previous = {"prior_audits": 10.0, "prior_requests": 1000.0, "cache_evictions": 5.0}
    window = {"cache_hit_rate": 0.7, "prior_kl_audit_semantic": 0.03, "prior_audits": 25.0,
              "prior_requests": 1800.0, "cache_evictions": 45.0, "cache_size": 640.0,
              "episode_return_mean": 2.5, "advantage_std": 0.8}
    s = signals_from_metrics(window, previous)
    assert s == MetaSignals(hit_rate=0.7, kl_semantic=0.03, audits=15, lookups=800, evictions=40, size=640,
                            return_mean=2.5, td_error=0.8)
    assert signals_from_metrics({**window, "td_error": 0.2}, previous).td_error == 0.2
    first = signals_from_metrics({k: v for k, v in window.items()
                                  if k not in ("prior_kl_audit_semantic", "cache_evictions", "advantage_std")}, None)
    assert (first.kl_semantic, first.audits, first.lookups, first.evictions, first.td_error) == (None, 25, 1800, 0, None)
