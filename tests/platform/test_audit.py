"""The KL audit: closed-form KL, argmax flips, and audits collected without blocking the caller."""

import numpy as np
import pytest
import ray

from priorcache.platform.cache.audit import HitAuditor, kl_divergence


def test_kl_divergence_matches_the_closed_form():
    p, q = np.array([0.7, 0.2, 0.1]), np.array([0.2, 0.5, 0.3])
    expected = sum(pi * np.log(pi / qi) for pi, qi in zip(p, q))
    assert kl_divergence(np.log(p), np.log(q)) == pytest.approx(expected, rel=1e-12)
    assert kl_divergence(np.log(p), np.log(p)) == 0.0


def test_audits_report_kl_and_argmax_flips(ray_session):
    auditor = HitAuditor(rate=1.0, max_inflight=4, seed=0)
    cached = np.log([0.6, 0.4])
    auditor.maybe_audit(lambda: ray.put(np.log([0.3, 0.7])), cached, 0.93, entry="e1")
    auditor.maybe_audit(lambda: ray.put(np.log([0.55, 0.45])), cached, 0.97, entry="e2")
    results = {r.entry: r for r in auditor.collect(wait_s=30)}
    assert results["e1"].flip and not results["e2"].flip
    assert results["e1"].kl == pytest.approx(kl_divergence(cached, np.log([0.3, 0.7])))
    assert results["e1"].similarity == 0.93
    assert auditor.collect() == []  # each audit is reported once


def test_no_audit_beyond_the_inflight_limit_or_rate(ray_session):
    started = []
    full = HitAuditor(rate=1.0, max_inflight=1, seed=0)
    for _ in range(3):
        full.maybe_audit(lambda: started.append(1) or ray.put(np.zeros(1)), np.zeros(1), 0.9)
    never = HitAuditor(rate=0.0, max_inflight=8, seed=0)
    never.maybe_audit(lambda: started.append(1) or ray.put(np.zeros(1)), np.zeros(1), 0.9)
    assert len(started) == 1
