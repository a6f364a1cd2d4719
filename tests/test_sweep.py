"""`priorcache sweep`: loading and checking a sweep, trial expansion, --dry-run, and a real
2-trial Tune sweep run as a user runs it, asserted in its MLflow store afterwards."""

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from priorcache.cli import main
from priorcache.platform.config import ConfigError
from priorcache.sweep import expand, load_sweep

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "experiments" / "textworld_ppo_prior.yaml"

TINY = [  # the game of test_eval_suite.py's tiny domain, on an even smaller budget: the uncached
    # trial asks the LLM at every step (~0.2 s a call on an idle core, seconds on a busy one)
    "env.game.world_size=2", "env.game.nb_objects=4", "env.game.quest_length=2",
    f"env.games_dir={REPO / '.cache' / 'games'}", "env.max_steps=5",
    "train.iterations=1", "algorithm.train_batch_size=16", "algorithm.minibatch_size=8",
    "algorithm.num_epochs=1", "eval.episodes=1",
]


def write_sweep(tmp_path: Path, **fields) -> Path:
    sweep = {
        "name": "t-sweep",
        "base": os.path.relpath(BASE, tmp_path),  # relative to the sweep file, as in experiments/sweeps
        "overrides": list(TINY),
        "policies": {"uncached": {"prior.cache.mode": "off"}, "exact": {"prior.cache.mode": "exact"}},
        **fields,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


@pytest.mark.parametrize("fields, named", [
    ({"scheduler": "hyperband"}, "scheduler"),
    ({"policies": {}}, "policies"),
    ({"policies": {"exact": {"prior.cache.mdoe": "exact"}}}, "policy 'exact'"),
    ({"policies": {"exact": {"prior.cache.mode": "fuzzy"}}}, "policy 'exact'"),
    ({"policies": {"exact": {"prior": {"cache": "exact"}}}}, "policies.exact"),
    ({"scheduler": "pbt"}, "search"),
    ({"metric": "reward"}, "metric"),
    ({"grace_period": 5}, "grace_period"),
    ({"sheduler": "asha"}, "sheduler"),
    ({"base": "missing.yaml"}, "base"),
    ({"overrides": ["train.iterations=0"]}, "overrides"),
    ({"policies": {"a": {"tracking.uri": "sqlite:///x.db"}}}, "tracking.uri"),
    ({"search": {"prior.cache.mode": ["exact"]}}, "search.prior.cache.mode"),
    ({"search": {"prior.cache.capacity": ["200", "-1"]}}, "prior.cache.capacity=-1"),
])
def test_bad_sweep_fails_naming_the_field(tmp_path, fields, named):
    with pytest.raises(ConfigError, match=None) as err:
        load_sweep(write_sweep(tmp_path, **fields))
    assert named in str(err.value)


def test_a_bad_key_in_any_policy_fails_the_whole_sweep_up_front(tmp_path):
    policies = {"exact": {"prior.cache.mode": "exact"}, "broken": {"prior.cache.treshold": "0.9"}}
    with pytest.raises(ConfigError) as err:
        load_sweep(write_sweep(tmp_path, policies=policies))
    assert "policy 'broken'" in str(err.value) and "prior.cache.treshold" in str(err.value)


def test_trials_cross_policies_with_the_grid_and_share_a_cache_per_policy(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, search={"prior.cache.capacity": [200, 1000], "seed": [0, 1]}))
    assert [(t.policy, t.point_label) for t in sweep.trials] == [
        (p, f"prior.cache.capacity={c},seed={s}") for p in ("uncached", "exact") for c in (200, 1000) for s in (0, 1)
    ]
    assert len(expand(sweep.config)) == 8
    first = sweep.trials[0]
    assert first.config.prior.cache.mode == "off" and first.config.prior.cache.capacity == 200
    assert first.config.seed == 0 and first.config.train.iterations == 1
    assert first.config.tracking.experiment == "t-sweep" and first.config.name.startswith("t-sweep-uncached")
    assert sweep.config.base == str(BASE)
    # Shared: one namespace per policy and cache setting (seeds share it; capacities cannot).
    assert [t.namespace for t in sweep.trials[:4]] == ["t-sweep.uncached.capacity-200"] * 2 + [
        "t-sweep.uncached.capacity-1000"] * 2
    assert {t.config.prior.cache.namespace for t in sweep.trials[4:]} == {
        "t-sweep.exact.capacity-200", "t-sweep.exact.capacity-1000"}

    alone = load_sweep(write_sweep(tmp_path, share_cache=False))
    assert [t.namespace for t in alone.trials] == ["t-sweep.uncached.trial0", "t-sweep.exact.trial1"]
    shared = load_sweep(write_sweep(tmp_path))
    assert [t.namespace for t in shared.trials] == ["t-sweep.uncached", "t-sweep.exact"]


def test_shipped_sweeps_load():
    sweeps = sorted((REPO / "experiments" / "sweeps").glob("*.yaml"))
    assert sweeps
    for path in sweeps:
        sweep = load_sweep(path)
        assert len(sweep.trials) >= 6 and sweep.config.scheduler in ("asha", "pbt", "fifo")


def test_results_table_reports_finished_stopped_failed_and_missing_trials(tmp_path):
    from types import SimpleNamespace

    from priorcache.sweep import _rows, format_table, write_rows

    policies = {p: {"prior.cache.mode": "exact"} for p in ("done", "cut", "broken", "never")}
    sweep = load_sweep(write_sweep(tmp_path, policies=policies, overrides=[*TINY, "train.iterations=3"]))
    metrics = {"episode_return_mean": 0.5, "llm_queries": 12.0, "cache_hit_rate": 0.75, "prior_kl_audit": 0.0,
               "trial_id": "x"}
    results = [
        SimpleNamespace(config={"policy": "done"}, metrics={**metrics, "iteration": 3.0}, error=None),
        SimpleNamespace(config={"policy": "cut"}, metrics={**metrics, "iteration": 1.0}, error=None),
        SimpleNamespace(config={"policy": "broken"}, metrics={}, error=RuntimeError("Traceback ...\nValueError: bad")),
    ]
    rows = _rows(sweep, results)
    assert [r["status"] for r in rows] == ["finished", "stopped early", "error", "not run"]
    assert rows[2]["error"] == "ValueError: bad" and rows[0]["llm_queries"] == 12.0
    table = format_table(rows, "episode_return_mean")
    assert "75.0%" in table and "trial 3 (broken) failed: ValueError: bad" in table
    write_rows(tmp_path / "results.csv", rows, "episode_return_mean")
    assert len((tmp_path / "results.csv").read_text().splitlines()) == 5


def test_schedulers_are_built_as_the_sweep_says(tmp_path):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

    from priorcache.sweep import make_scheduler

    asha = make_scheduler(load_sweep(write_sweep(tmp_path)).config, iterations=3)
    assert isinstance(asha, ASHAScheduler) and asha._max_t == 3
    pbt = load_sweep(write_sweep(tmp_path, scheduler="pbt", search={"algorithm.lr": ["0.001", "0.0003"]})).config
    scheduler = make_scheduler(pbt, iterations=3)
    assert isinstance(scheduler, PopulationBasedTraining)
    assert list(scheduler._hyperparam_mutations) == ["algorithm.lr"]
    assert isinstance(make_scheduler(load_sweep(write_sweep(tmp_path, scheduler="fifo")).config, 3), FIFOScheduler)


def test_dry_run_lists_the_trials_and_starts_nothing(tmp_path, capsys, monkeypatch):
    import ray

    def no_ray(*args, **kwargs):
        raise AssertionError("a dry run must not start Ray")

    # Other tests of the session may have started Ray already: check that this one does not.
    monkeypatch.setattr(ray, "init", no_ray)
    assert main(["sweep", str(write_sweep(tmp_path)), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 trials" in out
    assert "uncached" in out and "prior.cache.mode=off" in out and "prior.cache.mode=exact" in out
    assert not (tmp_path / "runs").exists()


def test_bad_sweep_via_the_cli_is_one_line_with_exit_code_2(tmp_path, capsys):
    assert main(["sweep", str(write_sweep(tmp_path, scheduler="hyperband"))]) == 2
    err = capsys.readouterr().err
    assert "scheduler" in err and "asha" in err and "Traceback" not in err


def test_two_trial_sweep_nests_its_trials_under_one_mlflow_run(tmp_path):
    sweep = write_sweep(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "PRIORCACHE_CACHE_DIR": str(REPO / ".cache")}  # the assembled LLM file, not a copy in tmp
    # mlflow.set_tracking_uri in earlier tests of this session exports MLFLOW_TRACKING_URI, which
    # would send the sweep's runs to their store instead of the working directory's.
    env.pop("MLFLOW_TRACKING_URI", None)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "priorcache", "sweep", str(sweep)], capture_output=True,
                          text=True, timeout=900, cwd=tmp_path, env=env)
    print(f"sweep took {time.monotonic() - started:.0f} s")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("t-sweep")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    assert {"results.csv", "sweep.yaml"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert sorted(r.data.tags["policy"] for r in children) == ["exact", "uncached"]
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["sweep"] == "t-sweep" and child.data.tags["trial_id"]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert {"llm_queries", "cache_hit_rate"} <= set(child.data.metrics)
        assert child.data.params["prior.cache.namespace"] == f"t-sweep.{child.data.tags['policy']}"

    with open(tmp_path / "runs" / "sweeps" / "t-sweep" / "results.csv", newline="") as f:
        rows = {r["policy"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["uncached", "exact"]
    for row in rows.values():
        assert row["status"] == "finished" and row["iterations"] == "1" and row["mlflow_run_id"]
    # Uncached, every prior request reaches the LLM; exact matching answers repeats from the cache.
    assert float(rows["uncached"]["cache_hit_rate"]) == 0.0 < float(rows["exact"]["cache_hit_rate"])
    assert float(rows["uncached"]["llm_queries"]) > float(rows["exact"]["llm_queries"]) > 0
    assert "uncached" in proc.stdout and "results.csv" in proc.stdout
