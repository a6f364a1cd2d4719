"""Runners on different nodes of one cluster share priors through the one named cache actor.

`benchmarks/multinode_cache.py --check` builds the cluster (`ray.cluster_utils.Cluster`: a head
and two worker nodes on this machine), pins two runners (Ray actors with a `PriorClient` each)
to the two nodes the driver (and so the cache actor) is not on, and lets them ask for the same
states in turn. It runs in a child process: a driver joins one Ray at a time and this
session's other tests share a local Ray (`ray_session`); the child also keeps the cluster's
files under a private RAY_TMPDIR, so no other `ray.init()` on the machine can join the test
cluster.

Slow (1-1.5 minutes on 2 shared cores: three raylets, two embedders, one LLM replica):
`pytest -m slow tests/cluster/test_multinode_cache.py`.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_runners_on_different_nodes_share_hits_and_keep_their_near_caches(tmp_path):
    out = tmp_path / "check.json"
    script = REPO / "benchmarks" / "multinode_cache.py"
    proc = subprocess.run([sys.executable, str(script), "--check", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = json.loads(out.read_text())

    runners = result["runner_nodes"]
    assert len(result["nodes"]) == 3 and runners["a"] != runners["b"]
    # The cache actor is created beside the driver, the runners are on the two other nodes.
    assert result["cache_node"] == result["driver_node"] not in runners.values()
    # A pays the LLM; B, on another node, hits what A paid for; then each answers from its near-cache.
    assert result["sources"] == {"a_first": ["llm"] * 3, "b_first": ["cache"] * 3,
                                 "a_again": ["near"] * 3, "b_again": ["near"] * 3}
    assert result["llm_queries"] == 3
    assert (result["cache_lookups"], result["cache_hits"]) == (6, 3)  # near hits never reach the actor
