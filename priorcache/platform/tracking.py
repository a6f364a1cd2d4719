"""MLflow tracking: one MLflow run per experiment, on a local sqlite store by default.

`RunTracker` opens the run (params = the resolved config, flattened), logs metrics as they
arrive (each call is committed to the store at once, so a crash or Ctrl-C loses nothing
already logged) and closes the run as FINISHED, FAILED or KILLED. Given a `run_id` it reopens
that run instead (a resumed run), whose params are already logged.

The store is `tracking.uri`, else `$MLFLOW_TRACKING_URI` (how a cluster job, whose working
directory is a temporary copy, is pointed at a lasting store), else `mlruns/mlflow.db` with
artifacts in `mlruns/artifacts`, both under the working directory; `priorcache ui` serves
that default store. A sqlite store keeps the artifacts of the experiments it creates in
`artifacts/` beside its database file, never in the working directory.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from types import TracebackType
from typing import Any

import mlflow
from mlflow.entities import RunStatus

from priorcache.interrupt import was_interrupted
from priorcache.platform.config import TrackingConfig

STORE_DIR = Path("mlruns")
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
_SQLITE = "sqlite:///"
_PARAMS_PER_CALL = 100


def default_tracking_uri() -> str:
    """sqlite store inside the project (working) directory."""
    return f"sqlite:///{(STORE_DIR / 'mlflow.db').resolve()}"


def default_artifact_root() -> Path:
    """Folder of the default store's artifacts."""
    return (STORE_DIR / "artifacts").resolve()


def tracking_uri(cfg: TrackingConfig) -> str:
    """`tracking.uri`, else `$MLFLOW_TRACKING_URI`, else the project's sqlite store."""
    return cfg.uri or os.environ.get(TRACKING_URI_ENV) or default_tracking_uri()


def artifact_root(uri: str) -> Path | None:
    """Artifact folder for new experiments of a sqlite store (beside its database); None for
    other stores, whose server or folder decides."""
    if not uri.startswith(_SQLITE):
        return None
    return Path(uri.removeprefix(_SQLITE)).resolve().parent / "artifacts"


class RunTracker:
    """Context manager around one MLflow run; see the module docstring."""

    def __init__(self, cfg: TrackingConfig, run_name: str, params: dict[str, Any], run_id: str = "") -> None:
        self._cfg = cfg
        self._run_name = run_name
        self._params = params
        self.run_id = run_id
        self.experiment_id = ""

    def __enter__(self) -> "RunTracker":
        uri = tracking_uri(self._cfg)
        artifacts = artifact_root(uri)
        if artifacts is not None:
            artifacts.parent.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(uri)
        if self.run_id:
            # MLflow refuses to change a logged param, and the resumed run's are logged already.
            self.experiment_id = mlflow.start_run(run_id=self.run_id).info.experiment_id
            return self
        experiment = mlflow.get_experiment_by_name(self._cfg.experiment)
        if experiment is None:
            self.experiment_id = mlflow.create_experiment(
                self._cfg.experiment, artifact_location=artifacts.as_uri() if artifacts is not None else None)
        else:
            self.experiment_id = experiment.experiment_id
        run = mlflow.start_run(experiment_id=self.experiment_id, run_name=self._run_name)
        self.run_id = run.info.run_id
        items = [(k, str(v)) for k, v in self._params.items()]
        for start in range(0, len(items), _PARAMS_PER_CALL):
            mlflow.log_params(dict(items[start:start + _PARAMS_PER_CALL]))
        return self

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Log finite numeric metrics at `step` (NaN/inf and non-numbers are skipped)."""
        clean = {k: float(v) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and math.isfinite(float(v))}
        if clean:
            mlflow.log_metrics(clean, step=step)

    def log_artifact(self, path: Path, subdir: str | None = None) -> None:
        """Copy a file into the run's artifacts."""
        mlflow.log_artifact(str(path), artifact_path=subdir)

    def set_tags(self, tags: dict[str, str]) -> None:
        """Attach tags (e.g. where the run's output folder is)."""
        mlflow.set_tags(tags)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            status = RunStatus.to_string(RunStatus.FINISHED)
        elif was_interrupted(exc):
            status = RunStatus.to_string(RunStatus.KILLED)
        else:
            status = RunStatus.to_string(RunStatus.FAILED)
        mlflow.end_run(status=status)
