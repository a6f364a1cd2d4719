"""The shipped cluster definitions (cluster/) are well formed and agree with this project.

Offline and fast: every YAML parses; the launcher configs pass Ray's own preparation and
validation (`ray up` runs the same, against ray/autoscaler/ray-schema.json); the KubeRay
manifests have the structure KubeRay needs, Ray's version, token authentication and a GPU
group; the RayJob runs an experiment that exists; the Dockerfile builds on the pinned Ray
and installs from the lock with the Makefile's uv, and its GPU variant gives vLLM replicas
their own pinned environment.
"""

from __future__ import annotations

import copy
import re
import shlex
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml

from priorcache.platform.config import load_config

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
LAUNCHERS = sorted((CLUSTER / "launcher").glob("*.yaml"))
KUBERAY = sorted((CLUSTER / "kuberay").glob("*.yaml"))
PROJECT_VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def ray_clusters() -> list[tuple[str, dict[str, Any]]]:
    """(file name, RayCluster spec) of every RayCluster and every RayJob's cluster."""
    specs = []
    for path in KUBERAY:
        for doc in documents(path):
            if doc["kind"] == "RayCluster":
                specs.append((path.name, doc["spec"]))
            elif doc["kind"] == "RayJob":
                specs.append((path.name, doc["spec"]["rayClusterSpec"]))
    return specs


def containers(group: dict[str, Any]) -> list[dict[str, Any]]:
    return group["template"]["spec"]["containers"]


def test_every_cluster_yaml_parses():
    paths = sorted(CLUSTER.rglob("*.yaml"))
    assert {p.name for p in paths} >= {"local.yaml", "aws.yaml", "raycluster.yaml", "rayjob.yaml"}
    for path in paths:
        assert documents(path), f"{path} is empty"


@pytest.mark.parametrize("path", LAUNCHERS, ids=lambda p: p.name)
def test_launcher_config_passes_rays_validation(path):
    pytest.importorskip("jsonschema")
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = documents(path)[0]
    prepared = prepare_config(copy.deepcopy(config))  # what `ray up` does before validating
    validate_config(prepared)
    assert prepared["head_node_type"] in prepared["available_node_types"]


def test_rays_validation_rejects_a_wrong_key():
    pytest.importorskip("jsonschema")
    from jsonschema import ValidationError
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = documents(CLUSTER / "launcher" / "aws.yaml")[0]
    config["auth"]["ssh_usr"] = "ubuntu"
    with pytest.raises(ValidationError, match="ssh_usr"):
        validate_config(prepare_config(config))


@pytest.mark.parametrize("path", LAUNCHERS, ids=lambda p: p.name)
def test_launcher_installs_the_project_and_starts_ray_with_token_auth(path):
    config = documents(path)[0]
    assert config["cluster_name"].startswith("priorcache")
    provider = config["provider"]
    if provider["type"] == "local":
        assert provider["head_ip"] and provider["worker_ips"]
        assert any("cluster/setup_node.sh" in cmd for cmd in config["setup_commands"])
        assert "make env" in (CLUSTER / "setup_node.sh").read_text()
        assert config["file_mounts"]["~/priorcache"] == "."
    else:
        assert config["head_node_type"] in config["available_node_types"]
        assert config["docker"]["image"].endswith(f"/priorcache:{PROJECT_VERSION}")
    # The token travels as a file, never as text in the config.
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    head = " ".join(config["head_start_ray_commands"])
    workers = " ".join(config["worker_start_ray_commands"])
    assert re.search(r"RAY_AUTH_MODE=token\b.*ray start --head .*--dashboard-host=127\.0\.0\.1", head)
    assert re.search(r"RAY_AUTH_MODE=token\b.*ray start --address=\$RAY_HEAD_IP:6379", workers)
    assert "MLFLOW_TRACKING_URI=sqlite:///" in yaml.safe_dump(config)


@pytest.mark.parametrize("name,spec", ray_clusters(), ids=lambda x: x if isinstance(x, str) else "")
def test_kuberay_cluster_has_cpu_head_cpu_and_gpu_workers(name, spec):
    assert spec["rayVersion"] == ray.__version__
    assert spec["authOptions"]["mode"] == "token"
    [head] = containers(spec["headGroupSpec"])
    assert "nvidia.com/gpu" not in head["resources"]["limits"]
    assert {"name": "MLFLOW_TRACKING_URI", "value": "sqlite:////home/ray/mlruns/mlflow.db"} in head["env"]
    groups = {group["groupName"]: group for group in spec["workerGroupSpecs"]}
    cpu_limits = [c["resources"]["limits"] for c in containers(groups["cpu"])]
    gpu_limits = [c["resources"]["limits"] for c in containers(groups["gpu"])]
    assert all("nvidia.com/gpu" not in limits for limits in cpu_limits)
    assert all(int(limits["nvidia.com/gpu"]) >= 1 for limits in gpu_limits)
    assert groups["gpu"]["minReplicas"] <= groups["gpu"]["maxReplicas"]
    for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
        for container in containers(group):
            assert re.fullmatch(rf"priorcache:{re.escape(PROJECT_VERSION)}(-gpu)?", container["image"]), name


@pytest.mark.parametrize("path", KUBERAY, ids=lambda p: p.name)
def test_kuberay_manifests_are_named_ray_v1_resources(path):
    for doc in documents(path):
        assert doc["metadata"]["name"]
        if doc["kind"] in ("RayCluster", "RayJob"):
            assert doc["apiVersion"] == "ray.io/v1"
    kinds = {doc["kind"] for doc in documents(path)}
    assert kinds & {"RayCluster", "RayJob"}, f"{path.name} defines neither a RayCluster nor a RayJob"


def test_rayjob_runs_an_experiment_of_this_repository():
    [job] = [doc for doc in documents(CLUSTER / "kuberay" / "rayjob.yaml") if doc["kind"] == "RayJob"]
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:4] == ["python", "-m", "priorcache", "run"], argv
    experiment = argv[4]
    assert re.fullmatch(r"experiments/[\w/]+\.yaml", experiment)
    load_config(REPO / experiment, argv[5:])  # exists and is a valid experiment, overrides included
    volumes = [v["persistentVolumeClaim"]["claimName"]
               for v in job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["volumes"]]
    claims = [doc["metadata"]["name"] for doc in documents(CLUSTER / "kuberay" / "raycluster.yaml")
              if doc["kind"] == "PersistentVolumeClaim"]
    assert volumes == claims


def test_dockerfile_builds_on_the_pinned_ray_and_installs_from_the_lock():
    dockerfile = (CLUSTER / "Dockerfile").read_text()
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    assert f"ARG BASE_IMAGE=rayproject/ray:{ray.__version__}-{py}\n" in dockerfile
    assert "FROM ${BASE_IMAGE}\n" in dockerfile
    assert "uv sync --frozen" in dockerfile
    uv_pin = re.search(r"pip install --quiet uv==([\d.]+)", (REPO / "Makefile").read_text()).group(1)
    assert f"FROM ghcr.io/astral-sh/uv:{uv_pin} AS uv" in dockerfile
    # `uv sync --frozen` finds torch only where the lock says: /opt/wheels/<this wheel>.
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    [torch] = [p for p in lock["package"] if p["name"] == "torch"]
    wheel = Path(torch["wheels"][0]["path"]).name
    assert f"ARG TORCH_WHEEL={wheel}\n" in dockerfile
    # The build context is nothing but what the image copies: no .venv or .cache comes back.
    ignored = (CLUSTER / "Dockerfile.dockerignore").read_text().splitlines()
    assert "*" in ignored and not [line for line in ignored if line.startswith("!.")]


def test_gpu_image_gives_vllm_replicas_an_environment_of_their_own():
    dockerfile = (CLUSTER / "Dockerfile").read_text()
    # Installed apart from the locked project environment (its pins conflict with vLLM's), from
    # the resolved requirements, with the project itself but none of its dependencies.
    assert "uv venv /home/ray/vllm-venv" in dockerfile
    assert "--python /home/ray/vllm-venv/bin/python \\\n           -r cluster/requirements-vllm.lock.txt" in dockerfile
    assert "--python /home/ray/vllm-venv/bin/python --no-deps ." in dockerfile
    assert dockerfile.count('if [ "${TORCH_CUDA}" = "1" ]') == 2  # only the GPU variant has it
    ignored = (CLUSTER / "Dockerfile.dockerignore").read_text().splitlines()
    assert {"!cluster/requirements-vllm.txt", "!cluster/requirements-vllm.lock.txt"} <= set(ignored)
    assert (CLUSTER / "requirements-vllm.lock.txt").is_file()


def test_no_secret_is_written_in_the_cluster_files():
    for path in CLUSTER.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not re.search(r"\b[0-9a-f]{32,}\b", text), f"{path} holds what looks like a token"
            assert "RAY_AUTH_TOKEN=" not in text, path
