"""Resuming an interrupted run: what a run leaves beside its checkpoint, and the checks first.

Every time `run_experiment` saves the RLlib checkpoint (`train.checkpoint_every`, and at the
end of training) it writes `resume.json` beside it: the MLflow run id, the iteration the
checkpoint holds and that iteration's metrics. `priorcache run CONFIG --resume RUN_DIR` then
restores the algorithm from `RUN_DIR/checkpoint`, trains iterations `checkpoint + 1 ...
train.iterations` into the same folder, and reopens the same MLflow run, so every metric
continues at its step. RLlib's own counters (`env_steps`, `prior_requests`, hit rates) come
back with the checkpoint; the counters the actors keep (`llm_queries`, `cache_evictions`, ...)
start again with a new Ray, so `counter_offsets` continues them from the logged values.
Iterations after the last checkpoint are trained again, their metrics logged again at the
same steps. This module checks and reads; it starts nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from priorcache.platform.config import ExperimentConfig, flatten, load_config, to_dict
from priorcache.platform.tracking import tracking_uri

RESUME_FILE = "resume.json"
CHECKPOINT = "checkpoint"
MAY_CHANGE = ("train.iterations", "train.checkpoint_every", "output_dir", "eval.", "ray.")
"""Config keys (or prefixes) a resumed run may set differently: none changes what is trained
or where it is tracked."""
ACTOR_COUNTERS = (
    "llm_queries", "llm_audit_queries", "llm_proposals", "llm_calls", "llm_deduplicated",
    "llm_replica_restarts", "llm_requeued", "cache_evictions", "cache_remapped_hits", "cache_false_hits",
    "cache_proposal_lookups", "cache_proposal_hits",
)
"""Cumulative metrics counted by the cache actor and the LLM pool, not in RLlib's checkpoint."""


class ResumeError(ValueError):
    """A run folder that cannot be resumed as asked; the message says what to change."""


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run starts from."""

    run_dir: Path
    mlflow_run_id: str
    iteration: int
    """Training iterations the checkpoint holds."""
    metrics: dict[str, float]
    """The metrics logged at `iteration`."""

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / CHECKPOINT


def save_resume_point(run_dir: Path, mlflow_run_id: str, iteration: int, metrics: dict[str, float]) -> None:
    """Record the checkpoint just saved in `run_dir` (atomically: a kill leaves the old record)."""
    record = {"mlflow_run_id": mlflow_run_id, "iteration": iteration, "metrics": metrics}
    tmp = run_dir / f".{RESUME_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
    os.replace(tmp, run_dir / RESUME_FILE)


def load_resume_point(cfg: ExperimentConfig, run_dir: str | Path) -> ResumePoint:
    """The resume point of `run_dir`, checked against `cfg` and its MLflow store."""
    run_dir = Path(run_dir).resolve()
    record_path = run_dir / RESUME_FILE
    if not record_path.is_file() or not (run_dir / CHECKPOINT).is_dir():
        raise ResumeError(
            f"--resume {run_dir}: no checkpoint recorded there ({RESUME_FILE} and {CHECKPOINT}/ are written "
            "at every checkpoint); give the folder of a run that saved one (train.checkpoint_every > 0)"
        )
    record = json.loads(record_path.read_text())
    _check_same_run(cfg, run_dir)
    if record["iteration"] >= cfg.train.iterations:
        raise ResumeError(
            f"--resume {run_dir}: its checkpoint already holds iteration {record['iteration']} and "
            f"'train.iterations' is {cfg.train.iterations}; raise train.iterations to train further"
        )
    uri = tracking_uri(cfg.tracking)
    try:
        mlflow.MlflowClient(tracking_uri=uri).get_run(record["mlflow_run_id"])
    except MlflowException as err:
        raise ResumeError(
            f"--resume {run_dir}: MLflow run {record['mlflow_run_id']} is not in the store {uri}; set "
            "'tracking.uri' (or MLFLOW_TRACKING_URI) to the store the run was tracked in"
        ) from err
    return ResumePoint(run_dir, record["mlflow_run_id"], int(record["iteration"]), record["metrics"])


def _check_same_run(cfg: ExperimentConfig, run_dir: Path) -> None:
    """The config must be the run's own (`config.yaml`) apart from `MAY_CHANGE`."""
    saved = flatten(to_dict(load_config(run_dir / "config.yaml")))
    wanted = flatten(to_dict(cfg))
    for key in sorted(saved.keys() | wanted.keys()):
        if key.startswith(MAY_CHANGE) or saved.get(key) == wanted.get(key):
            continue
        raise ResumeError(
            f"config key {key!r} is {wanted.get(key)!r}, but the run in {run_dir} was trained with "
            f"{saved.get(key)!r}; resume with the run's own config (only {', '.join(MAY_CHANGE)} may differ)"
        )


def counter_offsets(point: ResumePoint, now: dict[str, Any]) -> dict[str, float]:
    """What to add to the actors' counters (`now`, read as the resumed run starts) so that they
    continue from the values logged at the checkpoint."""
    return {k: float(point.metrics[k]) - float(now.get(k, 0.0)) for k in ACTOR_COUNTERS if k in point.metrics}
