"""Checks before a resume: the run's own config, a recorded checkpoint, its MLflow run."""

import json
from pathlib import Path

import mlflow
import pytest

from priorcache.platform.config import load_config, to_yaml
from priorcache.resume import ResumeError, counter_offsets, load_resume_point, save_resume_point


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """One MLflow store for the module (creating a sqlite store takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def run_folder(tmp_path: Path, store: str) -> tuple[Path, str]:
    """A run folder as an interrupted run leaves it, with its MLflow run."""
    cfg = load_config(None, [f"tracking.uri={store}", "train.iterations=2"])
    run_dir = tmp_path / "run"
    (run_dir / "checkpoint").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    client = mlflow.MlflowClient(tracking_uri=store)  # not mlflow.set_tracking_uri: it sets the env of later tests
    run = client.create_run(client.get_experiment_by_name("Default").experiment_id)
    save_resume_point(run_dir, run.info.run_id, 1, {"llm_queries": 40.0, "wall_time_s": 12.0})
    return run_dir, run.info.run_id


def test_resume_point_of_an_interrupted_run(tmp_path, store):
    run_dir, run_id = run_folder(tmp_path, store)
    cfg = load_config(run_dir / "config.yaml", ["train.iterations=5", "eval.episodes=3"])  # may differ
    point = load_resume_point(cfg, run_dir)
    assert (point.run_dir, point.mlflow_run_id, point.iteration) == (run_dir, run_id, 1)
    assert json.loads((run_dir / "resume.json").read_text())["iteration"] == 1
    # A fresh pool counts from 0; one that lived on counts queries past the checkpoint too.
    assert counter_offsets(point, {"llm_queries": 0.0}) == {"llm_queries": 40.0}
    assert counter_offsets(point, {"llm_queries": 55.0}) == {"llm_queries": -15.0}


def test_another_config_is_refused_naming_the_key(tmp_path, store):
    run_dir, _ = run_folder(tmp_path, store)
    cfg = load_config(run_dir / "config.yaml", ["prior.cache.threshold=0.9"])
    with pytest.raises(ResumeError, match="'prior.cache.threshold' is 0.9"):
        load_resume_point(cfg, run_dir)


def test_a_finished_count_of_iterations_is_refused(tmp_path, store):
    run_dir, _ = run_folder(tmp_path, store)
    with pytest.raises(ResumeError, match="raise train.iterations"):
        load_resume_point(load_config(run_dir / "config.yaml", ["train.iterations=1"]), run_dir)


def test_another_mlflow_store_is_refused(tmp_path, store):
    run_dir, _ = run_folder(tmp_path, store)
    cfg = load_config(run_dir / "config.yaml", [f"tracking.uri=sqlite:///{tmp_path / 'other.db'}"])
    with pytest.raises(ResumeError, match="tracking.uri"):
        load_resume_point(cfg, run_dir)


def test_a_folder_without_checkpoint_is_refused(tmp_path):
    with pytest.raises(ResumeError, match="no checkpoint"):
        load_resume_point(load_config(None), tmp_path)
