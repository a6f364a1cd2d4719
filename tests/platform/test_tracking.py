"""Which MLflow store a run goes to: `tracking.uri`, then $MLFLOW_TRACKING_URI, then the default."""

from pathlib import Path

import mlflow

from priorcache.platform.config import TrackingConfig
from priorcache.platform.tracking import RunTracker, artifact_root, default_tracking_uri, tracking_uri


def test_config_uri_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////from/env.db")
    assert tracking_uri(TrackingConfig(uri="sqlite:////from/config.db")) == "sqlite:////from/config.db"
    assert tracking_uri(TrackingConfig()) == "sqlite:////from/env.db"


def test_without_either_the_project_store_is_used(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(TrackingConfig()) == default_tracking_uri()


def test_sqlite_artifacts_live_beside_the_database():
    assert artifact_root("sqlite:////data/mlflow/mlflow.db") == Path("/data/mlflow/artifacts")
    assert artifact_root("http://127.0.0.1:5000") is None


def test_a_run_lands_in_the_store_named_by_the_environment(monkeypatch, tmp_path):
    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    with RunTracker(TrackingConfig(experiment="env-store"), "run", {"a": 1}) as tracker:
        tracker.log_metrics({"env_steps": 10.0}, step=1)
    run = mlflow.MlflowClient(tracking_uri=store).get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.data.params == {"a": "1"}
    assert run.info.artifact_uri.startswith((tmp_path / "store" / "artifacts").as_uri())
