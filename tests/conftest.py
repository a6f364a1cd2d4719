"""Shared fixtures: pinned thread counts, one local Ray instance per test session, the loader of
the benchmark scripts."""

import importlib.util
import os
import sys
from pathlib import Path

# With 2 cores, oversubscribed torch/llama.cpp threads slow down by 10x or more.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray instance (no dashboard) shared by the tests that need one.

    Logical CPUs exceed the 2 cores on purpose: LLM pools created by earlier tests keep their
    (idle) replica actors, which reserve a CPU each, and must not starve later tests.
    """
    import ray

    ray.init(num_cpus=6, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def load_benchmark():
    """Import a script of benchmarks/ by name (the folder is scripts, not a package)."""
    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # Ray ships a script's classes by value under the module's name
        spec.loader.exec_module(module)
        return module

    return load
