"""The offline bench: its YAML, time to return, and the table (no training here)."""

from pathlib import Path

import pytest

from priorcache.offline.bench import BenchConfig, load_bench, render, time_to_return
from priorcache.offline.dataset import DatasetCard
from priorcache.platform.config import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_bench_loads(monkeypatch):
    monkeypatch.chdir(REPO)
    bench = load_bench(REPO / "experiments" / "offline" / "textworld.yaml")
    assert bench.algorithms == ["cql", "cql_prior"] and bench.seeds == [0, 1] and bench.target_return == 3.0


def test_a_wrong_algorithm_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    path = tmp_path / "b.yaml"
    path.write_text("algorithms: [cql, ppo]\n")
    with pytest.raises(ConfigError, match="'algorithms'"):
        load_bench(path)


def test_time_to_return_is_the_first_evaluation_reaching_it():
    nan = float("nan")
    curve = [{"return": nan, "train_time_s": 1.0}, {"return": 1.0, "train_time_s": 2.0},
             {"return": 4.0, "train_time_s": 3.0}, {"return": 4.0, "train_time_s": 4.0}]
    assert time_to_return(curve, 3.0)["train_time_s"] == 3.0
    assert time_to_return(curve, 5.0) is None


def test_the_table_compares_with_cql_and_states_what_is_not_measured():
    card = DatasetCard(name="t", quality="medium", behaviour="b", epsilon=0.5, env={}, prior={}, episodes=2, steps=9,
                       return_mean=4.0, return_std=0.0, return_min=4.0, return_max=4.0, success_rate=1.0,
                       episode_len_mean=4.5, prior_requests=11, llm_queries=5, seed=0, seconds=1.0, command="c",
                       date="d")

    def run(algorithm, ret, ttr):
        return {"quality": "medium", "algorithm": algorithm, "seed": 0, "return": ret, "success": ret / 4,
                "train_time_s": 10.0, "to_target": {"train_time_s": ttr}}

    md = render(BenchConfig(), {"medium": card}, [run("cql", 2.0, 8.0), run("cql_prior", 3.0, 4.0)])
    assert "| medium | cql_prior | 3.00 | 75% | 1/1 | 4.0 | 10.0 | +50% | -50% |" in md
    assert "HalfCheetah (continuous) | +14–29% | −38–40% | not measured" in md
