"""Shared fixtures: pinned thread counts, one local Ray instance per test session."""

import os

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
