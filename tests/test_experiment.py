"""End to end on the real path: Ray, the CPU LLM through the shared cache, RLlib PPO-Prior,
a generated TextWorld game and an MLflow sqlite store, asserted afterwards."""

import json
import time
from pathlib import Path

import mlflow
import pytest

from priorcache.experiment import run_experiment
from priorcache.metrics import METRIC_NAMES
from priorcache.platform.config import load_config
from priorcache.resume import ResumeError

REPO = Path(__file__).resolve().parents[1]


def tiny_run_overrides(tmp_path: Path, namespace: str) -> list[str]:
    return [
        f"output_dir={tmp_path / 'runs'}",
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        "tracking.experiment=test",
        f"env.games_dir={REPO / '.cache' / 'games'}",
        "env.max_steps=20",
        "train.iterations=2",
        "algorithm.train_batch_size=100",
        "algorithm.minibatch_size=50",
        "algorithm.num_epochs=2",
        "eval.episodes=2",
        f"prior.cache.namespace={namespace}",
    ]


def test_ppo_prior_trains_and_is_tracked_in_mlflow(ray_session, tmp_path):
    # Every semantic hit audited: `prior_kl_audit` is absent (unknown) while semantic hits exist
    # but no audit has finished, and at the default 10% a 200-step run sometimes audits none.
    overrides = [*tiny_run_overrides(tmp_path, "e2e"), "prior.cache.meta.enabled=true", "prior.cache.audit_rate=1.0"]
    cfg = load_config(REPO / "experiments" / "textworld_ppo_prior.yaml", overrides)
    outcome = run_experiment(cfg)

    summary = json.loads(outcome.summary_path.read_text())
    assert summary["status"] == "finished"
    missing = [name for name in METRIC_NAMES if name not in summary]
    assert not missing, f"summary.json lacks {missing}"
    assert summary["env_steps"] >= 200
    assert 0 < summary["llm_queries"] <= summary["prior_requests"]
    assert summary["prior_requests"] >= summary["env_steps"]
    assert {"success_rate", "prior_success_rate", "random_success_rate"} <= set(summary)  # the three evaluations

    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.uri)
    run = client.get_run(outcome.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["algorithm.name"] == "ppo_prior"
    history = client.get_metric_history(run.info.run_id, "prior_requests")
    assert [m.step for m in history] == [1, 2]
    assert {"cache_hit_rate", "llm_queries", "env_steps", "episode_return_mean", "meta_overhead_frac",
            "prior_temperature", "cache_capacity"} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "summary.json", "cache_stats.json", "cache_snapshot.npz", "plots"} <= artifacts
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {f"plots/{name}.png" for name in
                     ("learning_curves", "cache_llm", "prior_latency", "kl_audit_bound", "cache_params")}


def test_interrupted_run_keeps_what_it_recorded(ray_session, tmp_path, monkeypatch):
    import priorcache.experiment as experiment

    real_progress_line = experiment.progress_line

    def interrupt_on_second_iteration(iteration, iterations, metrics):
        if iteration == 2:
            raise KeyboardInterrupt
        return real_progress_line(iteration, iterations, metrics)

    monkeypatch.setattr(experiment, "progress_line", interrupt_on_second_iteration)
    cfg = load_config(REPO / "experiments" / "textworld_ppo_prior.yaml", tiny_run_overrides(tmp_path, "e2e"))
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg)

    [summary_path] = (tmp_path / "runs").glob("*/summary.json")
    assert json.loads(summary_path.read_text())["status"] == "interrupted"
    assert (summary_path.parent / "cache_snapshot.npz").is_file()  # the priors paid for are kept
    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.uri)
    [run] = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert run.info.status == "KILLED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "env_steps")] == [1, 2]
    # the figures of what was logged before the interrupt
    assert "plots/learning_curves.png" in {a.path for a in client.list_artifacts(run.info.run_id, "plots")}


def test_an_interrupt_does_not_wait_for_an_env_runner_busy_sampling(ray_session, tmp_path, monkeypatch):
    from ray.rllib.algorithms.algorithm import Algorithm

    sample_finished = tmp_path / "sample_finished"

    def interrupted_while_the_env_runner_samples(algo):
        def long_sample(env_runner):  # stands in for a sample of many LLM calls
            time.sleep(20)
            sample_finished.touch()

        algo.env_runner_group.foreach_env_runner(long_sample, local_env_runner=False, timeout_seconds=0)  # no wait
        raise KeyboardInterrupt

    monkeypatch.setattr(Algorithm, "train", interrupted_while_the_env_runner_samples)
    cfg = load_config(REPO / "experiments" / "textworld_ppo_prior.yaml", tiny_run_overrides(tmp_path, "busy"))
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg)

    # Had `algo.stop()` waited for the runner, its sample would have finished first.
    assert not sample_finished.exists()
    [summary_path] = (tmp_path / "runs").glob("*/summary.json")
    assert json.loads(summary_path.read_text())["status"] == "interrupted"
    time.sleep(25)  # the runner was killed: its sample never finishes
    assert not sample_finished.exists()


@pytest.mark.slow  # two runs: about 4.5 minutes on 2 shared cores
def test_interrupted_run_resumes_from_its_checkpoint_in_the_same_mlflow_run(ray_session, tmp_path):
    overrides = [*tiny_run_overrides(tmp_path, "resume"), "train.checkpoint_every=1", "eval.episodes=1",
                 "eval.prior_alone=false"]
    cfg = load_config(REPO / "experiments" / "textworld_ppo_prior.yaml", overrides)

    def interrupt_after_first_iteration(iteration, metrics):
        if iteration == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, on_iteration=interrupt_after_first_iteration)
    [run_dir] = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"

    outcome = run_experiment(cfg, resume=run_dir)

    assert outcome.run_dir == run_dir and outcome.summary["status"] == "finished"
    assert outcome.summary["resumed_from_iteration"] == 1
    assert "success_rate" in outcome.summary and "prior_success_rate" not in outcome.summary
    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.uri)
    [run] = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert run.info.run_id == outcome.mlflow_run_id and run.info.status == "FINISHED"
    env_steps = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "env_steps")}
    llm_queries = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "llm_queries")}
    wall_time = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "wall_time_s")}
    assert sorted(env_steps) == sorted(llm_queries) == [1, 2]
    # The counters continue from the checkpoint: iteration 2 adds its batch to iteration 1's steps.
    assert env_steps[2] >= env_steps[1] + cfg.algorithm.train_batch_size
    assert outcome.summary["env_steps"] == env_steps[2]
    assert llm_queries[2] >= llm_queries[1] > 0 and wall_time[2] > wall_time[1]
    with pytest.raises(ResumeError, match="train.iterations"):  # nothing left to train
        run_experiment(cfg, resume=run_dir)
