"""Run plots: figures built from a real MLflow store's metric history and logged back into it."""

import logging

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from priorcache.platform import run_plots
from priorcache.platform.run_plots import build_figures, log_run_plots, read_history

ITERATIONS = [
    {"env_steps": 100, "episode_return_mean": 1.0, "success_rate": 0.2, "cache_hit_rate": 0.5,
     "llm_queries": 50, "prior_requests": 100, "prior_latency_ms_p50": 300.0, "prior_latency_ms_p95": 900.0,
     "llm_latency_ms_p50": 800.0, "llm_latency_ms_p95": 1000.0, "cache_threshold": 0.95, "cache_capacity": 1000,
     "cache_refresh": 0, "prior_temperature": 1.0, "prior_kl_audit": 0.0, "prior_kl_audit_window": 0.0},
    {"env_steps": 200, "episode_return_mean": 2.5, "success_rate": 0.6, "cache_hit_rate": 0.9,
     "llm_queries": 60, "prior_requests": 200, "prior_latency_ms_p50": 0.05, "prior_latency_ms_p95": 700.0,
     "llm_latency_ms_p50": 750.0, "llm_latency_ms_p95": 950.0, "cache_threshold": 0.94, "cache_capacity": 1500,
     "cache_refresh": 4, "prior_temperature": 1.1, "prior_kl_audit": 0.01, "prior_kl_audit_window": 0.02,
     "prior_kl_bound": 0.05},
]


@pytest.fixture
def store(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    return mlflow.create_experiment("plots", artifact_location=(tmp_path / "artifacts").as_uri())


def log_iterations(iterations):
    for step, metrics in enumerate(iterations, start=1):
        mlflow.log_metrics(metrics, step=step)


def test_a_meta_optimized_run_gets_every_figure(store):
    with mlflow.start_run(experiment_id=store) as run:
        mlflow.log_param(run_plots.META_PARAM, "True")
        log_iterations(ITERATIONS)
        mlflow.log_metrics({"eval_success_rate": 1.0, "eval_random_success_rate": 0.3}, step=2)
        logged = log_run_plots()
    assert sorted(logged) == ["plots/cache_llm.png", "plots/cache_params.png", "plots/kl_audit_bound.png",
                              "plots/learning_curves.png", "plots/prior_latency.png"]
    client = MlflowClient()
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} == set(logged)
    history = read_history(client, run.info.run_id)
    assert [value for _, value in history["env_steps"]] == [100, 200]
    assert history["eval_success_rate"] == [(2, 1.0)]


def test_a_run_without_prior_or_meta_gets_only_learning_curves(store):
    no_prior = [{"env_steps": 100 * i, "episode_return_mean": float(i), "success_rate": 0.1 * i,
                 "llm_queries": 0, "prior_requests": 0, "cache_hit_rate": 0.0} for i in (1, 2)]
    with mlflow.start_run(experiment_id=store):
        mlflow.log_param(run_plots.META_PARAM, "False")
        log_iterations(no_prior)
        assert log_run_plots() == ["plots/learning_curves.png"]


def test_panels_without_data_say_so():
    figures = build_figures({"prior_requests": [(1, 10.0)]}, meta_enabled=False)
    kl_axes = figures["kl_audit_bound.png"].axes[0]
    assert [t.get_text() for t in kl_axes.texts] == ["not measured in this run"]


def test_a_plotting_failure_is_a_warning_not_an_error(store, monkeypatch, caplog):
    def broken(history, meta_enabled):
        raise RuntimeError("no figure today")

    monkeypatch.setattr(run_plots, "build_figures", broken)
    with caplog.at_level(logging.WARNING, logger="priorcache"), mlflow.start_run(experiment_id=store):
        log_iterations(ITERATIONS[:1])
        assert log_run_plots() == []
    assert "no figure today" in caplog.text
