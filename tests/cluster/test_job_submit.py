"""How a cluster runs an experiment: `ray job submit ... -- python -m priorcache run ...`.

A head of its own (`ray start --head` with token authentication, dashboard on loopback, free ports,
a private temp dir) gets a tiny experiment through the Jobs API exactly as docs/cluster.md
shows; the job must succeed, its driver must have joined that head (not started a Ray of
its own), and its MLflow run must be FINISHED in the store named by MLFLOW_TRACKING_URI.
Only the processes of that head are stopped afterwards: `ray stop` would stop every Ray on
the machine.

About 2 minutes on 2 cores; in the default selection on purpose, so CI submits a real job on
every run (the cluster issue asks for exactly that).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import mlflow
import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")
# Never uploaded with the job: the venv, caches, run outputs and stores (hundreds of MiB).
EXCLUDES = [".venv", ".cache", ".git", ".pytest_cache", "mlruns", "runs", "**/__pycache__"]
WORKER_PORTS = 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(size: int) -> int:
    """First port of `size` consecutive ports that are free now (workers bind them later)."""
    for _ in range(200):
        first = free_port()
        if first + size >= 65536:
            continue
        try:
            with ExitStack() as stack:
                for port in range(first, first + size):
                    s = stack.enter_context(socket.socket())
                    s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError(f"no {size} consecutive free ports found")


def session_processes(root: psutil.Process) -> list[psutil.Process]:
    """`root`, its descendants, and every process still in its session (daemons Ray re-parents)."""
    found = {p.pid: p for p in [root, *root.children(recursive=True)]}
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == root.pid:
                found.setdefault(proc.pid, proc)
        except (ProcessLookupError, PermissionError):
            continue
    return list(found.values())


def stop_head(head: subprocess.Popen) -> None:
    """Stop the head this test started and everything it spawned, nothing else."""
    try:
        procs = session_processes(psutil.Process(head.pid))
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=20)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    head.wait(timeout=10)


def get_json(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_for_dashboard(url: str, token: str, head: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            get_json(f"{url}/api/version", token)
            return
        except OSError:
            assert head.poll() is None, f"ray start exited: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"dashboard not up after {timeout_s} s: {log.read_text()[-3000:]}"
            time.sleep(1)


def test_submitted_job_joins_the_cluster_and_tracks_its_run(tmp_path):
    token = secrets.token_hex(32)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    env.pop("RAY_ADDRESS", None)
    # Ray's socket paths must stay under 108 bytes: pytest's tmp_path is too deep for them.
    temp_dir = Path(tempfile.mkdtemp(prefix="pc-ray-", dir="/tmp"))
    gcs_port, dashboard_port = free_port(), free_port()
    first_worker_port = free_port_range(WORKER_PORTS)
    head_log = tmp_path / "ray-start.log"
    with head_log.open("w") as log:
        head = subprocess.Popen(
            [str(RAY), "start", "--head", "--block", "--disable-usage-stats",
             "--dashboard-host=127.0.0.1", "--include-dashboard=true",
             f"--port={gcs_port}", f"--dashboard-port={dashboard_port}", f"--temp-dir={temp_dir}",
             "--num-cpus=2", f"--ray-client-server-port={free_port()}",
             f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
             f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
             f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}",
             f"--min-worker-port={first_worker_port}", f"--max-worker-port={first_worker_port + WORKER_PORTS - 1}"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    dashboard = f"http://127.0.0.1:{dashboard_port}"
    store = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    submission_id = f"priorcache-test-{secrets.token_hex(4)}"
    runtime_env = {"excludes": EXCLUDES, "env_vars": {
        "MLFLOW_TRACKING_URI": store,
        # The packaged model is assembled once into the project's cache, not per job.
        "PRIORCACHE_CACHE_DIR": str(REPO / ".cache"),
        "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
    }}
    overrides = [
        f"output_dir={tmp_path / 'runs'}", f"env.games_dir={REPO / '.cache' / 'games'}",
        "tracking.experiment=job-submit", "prior.cache.namespace=job-submit",
        "env.max_steps=10", "train.iterations=1", "algorithm.train_batch_size=50",
        "algorithm.minibatch_size=25", "algorithm.num_epochs=1", "eval.episodes=1",
    ]
    try:
        wait_for_dashboard(dashboard, token, head, head_log)
        submit = subprocess.run(
            [str(RAY), "job", "submit", "--address", dashboard, "--submission-id", submission_id,
             "--working-dir", str(REPO), "--runtime-env-json", json.dumps(runtime_env), "--",
             sys.executable, "-m", "priorcache", "run", "experiments/textworld_ppo_prior.yaml", *overrides],
            env=env, capture_output=True, text=True, timeout=900,
        )
        details = get_json(f"{dashboard}/api/jobs/{submission_id}", token)
    finally:
        stop_head(head)
        shutil.rmtree(temp_dir, ignore_errors=True)

    assert submit.returncode == 0, submit.stdout[-4000:] + submit.stderr[-2000:]
    assert details["status"] == "SUCCEEDED", details
    # A driver that joined the head registered with it; one that started its own Ray did not.
    assert details["driver_info"] is not None, details
    assert "finished textworld_ppo_prior" in submit.stdout

    client = mlflow.MlflowClient(tracking_uri=store)
    [run] = client.search_runs([client.get_experiment_by_name("job-submit").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["train.iterations"] == "1"
    assert {"env_steps", "prior_requests", "llm_queries"} <= set(run.data.metrics)
    assert "summary.json" in {a.path for a in client.list_artifacts(run.info.run_id)}
