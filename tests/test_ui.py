"""`priorcache ui` serves the MLflow UI on the project's store, bound to loopback."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ui_serves_the_store_with_its_runs(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)
    experiment_id = mlflow.create_experiment("ui-test")
    with mlflow.start_run(experiment_id=experiment_id, run_name="shown"):
        mlflow.log_metric("cache_hit_rate", 0.75)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "priorcache", "ui", "--port", str(port), "--store", store],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180  # liveness, not speed: a loaded 2-core machine is slow to start it
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
                assert time.monotonic() < deadline, "MLflow UI did not come up within 180 s"
                time.sleep(1)
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=ui-test"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert b"ui-test" in response.read()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
