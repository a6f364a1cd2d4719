"""The offline bench: its YAML, time to return, and the table (no training here)."""

from pathlib import Path

import pytest

import json
from dataclasses import asdict

from priorcache.offline.bench import BenchConfig, DomainBench, load_bench, render, stored_results, time_to_return
from priorcache.offline.dataset import DatasetCard
from priorcache.platform.config import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_bench_covers_both_domains(monkeypatch):
    monkeypatch.chdir(REPO)
    bench = load_bench(REPO / "experiments" / "offline" / "bench.yaml")
    textworld, cheetah = bench.domains
    assert textworld.algorithms == ["cql", "cql_prior"] and textworld.target_return == 3.0
    assert cheetah.algorithms == ["cql_continuous", "cql_prior_continuous"] and bench.seeds == [0, 1]


def test_a_wrong_algorithm_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    path = tmp_path / "b.yaml"
    path.write_text("domains:\n  - {name: tw, algorithms: [cql, ppo]}\n")
    with pytest.raises(ConfigError, match="'domains\\[0\\].algorithms'"):
        load_bench(path)


def test_an_algorithm_that_does_not_fit_the_env_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    path = tmp_path / "b.yaml"
    path.write_text("domains:\n  - {name: tw, algorithms: [cql, cql_prior_continuous]}\n")
    with pytest.raises(ConfigError, match="domains\\[0\\].*tw.*does not fit"):
        load_bench(path)


def test_stored_runs_are_kept_only_for_unchanged_domains(tmp_path):
    old = BenchConfig(domains=[DomainBench(name="a", overrides=["x=1"]), DomainBench(name="b")],
                      output=str(tmp_path / "out"))
    runs = [{"domain": d, "quality": "medium", "algorithm": "cql", "seed": 0} for d in ("a", "b")]
    (tmp_path / "out.json").write_text(json.dumps({"bench": asdict(old), "datasets": {}, "runs": runs}))
    new = BenchConfig(domains=[DomainBench(name="a", overrides=["x=2"]), DomainBench(name="b")],
                      output=str(tmp_path / "out"))
    _, kept = stored_results(new)
    assert [r["domain"] for r in kept] == ["b"]  # a's overrides changed: its runs measured something else


def test_time_to_return_is_the_first_evaluation_reaching_it():
    nan = float("nan")
    curve = [{"return": nan, "train_time_s": 1.0}, {"return": 1.0, "train_time_s": 2.0},
             {"return": 4.0, "train_time_s": 3.0}, {"return": 4.0, "train_time_s": 4.0}]
    assert time_to_return(curve, 3.0)["train_time_s"] == 3.0
    assert time_to_return(curve, 5.0) is None


def test_the_table_compares_with_the_baseline_beside_the_paper():
    card = DatasetCard(name="t", quality="medium", behaviour="b", env={}, prior={}, episodes=2, steps=9,
                       return_mean=4.0, return_std=0.0, return_min=4.0, return_max=4.0, success_rate=1.0,
                       episode_len_mean=4.5, prior_requests=11, llm_queries=5, seed=0, seconds=1.0, command="c",
                       date="d")

    def run(algorithm, ret, ttr):
        return {"domain": "textworld", "quality": "medium", "algorithm": algorithm, "seed": 0, "return": ret,
                "success": ret / 4, "train_time_s": 10.0, "curve": [{"return": 4.0, "train_time_s": ttr}]}

    md = render(BenchConfig(), {"textworld": {"medium": card}}, [run("cql", 2.0, 8.0), run("cql_prior", 3.0, 4.0)])
    assert "| medium | cql_prior | 3.00 | 75% | 1/1 | 4.0 | 10.0 | +50% | -50% |" in md
    assert "| TextWorld (discrete) | +14–29% | −38–40% | the \"vs cql\" columns of its section above |" in md
