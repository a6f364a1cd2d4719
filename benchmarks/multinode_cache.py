"""Multi-node cache: runners on different nodes share priors through the one named cache actor.

What it shows: on a simulated cluster (`ray.cluster_utils.Cluster`: a head and two worker
nodes, each its own raylet, all on this machine), two runners - Ray actors holding a
`PriorClient` each, as env runners do - pinned (`NodeAffinitySchedulingStrategy`) to the two
nodes other than the driver's, where the cache actor is, ask for the priors of the same states. What the first
runner paid the LLM for is a `cache` hit for the second (shared through the named cache
actor), and each runner then answers repeats from its own near-cache (`near`). Then the round
trip of one cache lookup from a runner on the cache actor's node and from a runner on another
node, beside the end-to-end latency of near-cache and cache hits: the numbers behind running
one cache actor with near-caches rather than shards (docs/cluster.md, "One cache actor").

The cluster keeps its files under a temporary RAY_TMPDIR: the head writes its address to
`<tmp>/ray/ray_current_cluster`, and in /tmp/ray any plain `ray.init()` on this machine would
find that file and join this cluster instead of starting its own Ray.

How to run:  .venv/bin/python benchmarks/multinode_cache.py [--lookups 500] [--out docs/results/multinode]
             (writes docs/results/multinode.md and .json; about 2 minutes on 2 cores)
             --check: the sharing part only, its outcome as JSON in --out (what
             tests/cluster/test_multinode_cache.py runs)

Results to expect (2-core VM shared with training runs, 2026-11-27, table in
docs/results/multinode.md): every source as above (LLM queries 3 for 6 requests across the
two nodes); a one-lookup round trip of ~1-2 ms p50 from either node, the remote node no slower
than the local one beyond noise (the simulated nodes share one kernel: a real network adds
its RTT, ~0.1-0.5 ms in a data centre); a near-cache hit ~0.1 ms end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # noqa: E402

from priorcache.platform.cache.core import Guard, hash_text  # noqa: E402
from priorcache.platform.config import PriorConfig  # noqa: E402
from priorcache.platform.prior_client import PriorClient, connect  # noqa: E402

RESULTS = Path("docs/results/multinode")
NAMESPACE = "multinode"
STATES = (
    "Goal: take the key.\nYou are in a hall. A brass key lies on the floor.",
    "Goal: take the key.\nYou are in a kitchen. A fridge hums in the corner.",
    "Goal: take the key.\nYou are in a garden. A gate leads north.",
)
CANDIDATES = ("take brass key", "go north", "open fridge", "look")


def prior_config() -> PriorConfig:
    """Exact matching, no audits: every source below is determined by the order of requests."""
    cfg = PriorConfig()
    cfg.cache.namespace, cfg.cache.mode, cfg.cache.audit_rate = NAMESPACE, "exact", 0.0
    return cfg


@ray.remote(num_cpus=0)
class Runner:
    """One env runner's prior path (a `PriorClient` with its near-cache) on the node it is pinned to."""

    def __init__(self, cfg: PriorConfig) -> None:
        self._client = PriorClient(cfg)
        self._cache, _ = connect(cfg)

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def request(self, states: list[str], candidates: list[str]) -> list[tuple[str, float]]:
        """(source, end-to-end latency in ms) of each state's prior."""
        results = [self._client.request(s, candidates) for s in states]
        return [(r.source, r.latency_ms) for r in results]

    def lookup_round_trips(self, state: str, candidates: list[str], n: int) -> list[float]:
        """`n` one-lookup calls to the cache actor back to back (a hit), ms each."""
        guard = Guard.for_candidates(*self._client.guard_ids, candidates)
        request = [(self._client.embedder.embed_one(state), hash_text(state), guard, tuple(candidates))]
        times = []
        for _ in range(n):
            sent = time.perf_counter()
            hits, _, _ = ray.get(self._cache.lookup.remote(request))
            times.append((time.perf_counter() - sent) * 1e3)
            assert hits[0] is not None
        return times


# Ship this module's classes by value: workers cannot import it when it runs as a script.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def start_cluster(worker_nodes: int) -> Cluster:
    """A head and `worker_nodes` worker nodes of 1 CPU each (the LLM replica takes one; runners and
    the cache actor need none), joined by this driver."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(worker_nodes):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
    return cluster


def pinned(node_id: str) -> NodeAffinitySchedulingStrategy:
    return NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)


def node_of(actor: ray.actor.ActorHandle) -> str:
    """The node an actor runs on (any actor, through Ray's `__ray_call__`)."""
    return ray.get(actor.__ray_call__.remote(lambda _: ray.get_runtime_context().get_node_id()))


def other_nodes(cluster: Cluster) -> list[str]:
    """The nodes besides the driver's. The simulated nodes share one address, so the driver may
    have attached to any of them (on a real cluster a job's driver runs on the head)."""
    driver = ray.get_runtime_context().get_node_id()
    return [node.node_id for node in cluster.list_all_nodes() if node.node_id != driver]


def start_runners(cluster: Cluster) -> tuple[ray.actor.ActorHandle, ray.actor.ActorHandle]:
    """Runners A and B on two nodes other than the driver's; the driver first creates the shared
    actors (beside itself), as `priorcache run` does."""
    connect(prior_config())
    a, b = (Runner.options(scheduling_strategy=pinned(node)).remote(prior_config())
            for node in other_nodes(cluster)[:2])
    return a, b


def share_hits(cluster: Cluster, a: ray.actor.ActorHandle, b: ray.actor.ActorHandle) -> dict[str, Any]:
    """Runners A and B ask for the same states in turn; sources, nodes, counters."""
    cache, pool = connect(prior_config())
    turns = {}
    for name, runner in (("a_first", a), ("b_first", b), ("a_again", a), ("b_again", b)):
        turns[name] = ray.get(runner.request.remote(list(STATES), list(CANDIDATES)))
    cache_stats, pool_stats = ray.get([cache.stats.remote(), pool.stats.remote()])
    return {
        "nodes": [node.node_id for node in cluster.list_all_nodes()],
        "driver_node": ray.get_runtime_context().get_node_id(),
        "runner_nodes": {"a": ray.get(a.node_id.remote()), "b": ray.get(b.node_id.remote())},
        "cache_node": node_of(cache),
        "sources": {name: [source for source, _ in turn] for name, turn in turns.items()},
        "latency_ms": {name: [ms for _, ms in turn] for name, turn in turns.items()},
        "llm_queries": pool_stats["llm_queries"],
        "cache_lookups": cache_stats["lookups"],
        "cache_hits": cache_stats["hits"],
    }


def round_trips(shared: dict[str, Any], runners: tuple[ray.actor.ActorHandle, ...], lookups: int
                ) -> dict[str, dict[str, float]]:
    """p50/p95 of one-lookup calls from a runner on the cache actor's node and from one elsewhere."""
    cache_node = shared["cache_node"]
    local = Runner.options(scheduling_strategy=pinned(cache_node)).remote(prior_config())
    remote = next(r for r, node in zip(runners, shared["runner_nodes"].values()) if node != cache_node)
    out = {}
    for name, runner in (("same_node", local), ("other_node", remote)):
        ray.get(runner.lookup_round_trips.remote(STATES[0], list(CANDIDATES), 50))  # warm the connection
        times = ray.get(runner.lookup_round_trips.remote(STATES[0], list(CANDIDATES), lookups))
        out[name] = {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
                     "lookups": lookups}
    return out


def write_results(shared: dict[str, Any], trips: dict[str, dict[str, float]], command: str, out: Path) -> None:
    """`out`.md (how it was made, sources, latencies) and `out`.json (the same numbers)."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    near = [ms for name in ("a_again", "b_again") for ms in shared["latency_ms"][name]]
    cache_hits = shared["latency_ms"]["b_first"]
    llm = shared["latency_ms"]["a_first"]
    rows = "\n".join(f"| {name} | {'runner A' if name[0] == 'a' else 'runner B'} | {', '.join(sources)} |"
                     for name, sources in shared["sources"].items())
    beside_driver = shared["cache_node"] == shared["driver_node"]
    cache_place = "the driver's node (it is created beside its creator)" if beside_driver else "another node"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(
        "# Results: one cache actor shared across nodes\n\n"
        f"Generated by `benchmarks/multinode_cache.py` ({stamp}) with\n\n    {command}\n\n"
        f"Cluster: `ray.cluster_utils.Cluster` on one {os.cpu_count()}-core machine (load average "
        f"{os.getloadavg()[0]:.2f} at the end): {len(shared['nodes'])} nodes (a head and worker nodes), "
        f"1 CPU each, Ray {ray.__version__}. The cache actor ran on {cache_place}; runners A and B are "
        "Ray actors with a `PriorClient` each (near-cache 256 entries), pinned to the two other nodes. "
        "Cache mode exact, 3 states x 4 candidates, the real Gemma 270M prior.\n\n"
        "| turn | runner | source of each of the 3 priors |\n|---|---|---|\n"
        f"{rows}\n\n"
        f"LLM queries: **{shared['llm_queries']:.0f}** for 12 requests; the cache actor served "
        f"{shared['cache_hits']:.0f} hits of {shared['cache_lookups']:.0f} lookups (the other requests were "
        "near-cache hits that never left their runner).\n\n"
        "| latency | p50 ms | p95 ms | samples |\n|---|---:|---:|---:|\n"
        f"| one cache lookup, runner on the cache actor's node | {trips['same_node']['p50_ms']:.2f} "
        f"| {trips['same_node']['p95_ms']:.2f} | {trips['same_node']['lookups']} |\n"
        f"| one cache lookup, runner on another node | {trips['other_node']['p50_ms']:.2f} "
        f"| {trips['other_node']['p95_ms']:.2f} | {trips['other_node']['lookups']} |\n"
        f"| request answered by the near-cache (end to end) | {np.median(near):.2f} | {np.max(near):.2f} "
        f"| {len(near)} |\n"
        f"| request answered by the cache actor (end to end, runner B) | {np.median(cache_hits):.2f} "
        f"| {np.max(cache_hits):.2f} | {len(cache_hits)} |\n"
        f"| request answered by the LLM (end to end) | {np.median(llm):.0f} | {np.max(llm):.0f} | {len(llm)} |\n\n"
        "End-to-end rows have 3-6 samples: their p95 column is the maximum. The simulated nodes share one "
        "kernel, so 'another node' measures Ray's path between raylets, not a network; add the network's "
        "round trip for real nodes.\n"
    )
    out.with_suffix(".json").write_text(json.dumps(
        {"command": command, "generated": stamp, "sharing": shared, "round_trips": trips}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=500, help="one-lookup calls per round-trip row")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results path without suffix (.md and .json)")
    parser.add_argument("--check", action="store_true", help="sharing only; its outcome as JSON in --out")
    args = parser.parse_args()
    ray_tmp = tempfile.mkdtemp(prefix="pc-mn-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    os.environ["RAY_TMPDIR"] = ray_tmp
    cluster = start_cluster(worker_nodes=2)
    try:
        runners = start_runners(cluster)
        shared = share_hits(cluster, *runners)
        if args.check:
            args.out.write_text(json.dumps(shared, indent=2))
            return
        trips = round_trips(shared, runners, args.lookups)
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    command = " ".join([".venv/bin/python", Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    write_results(shared, trips, command, args.out)
    print(f"results: {args.out.with_suffix('.md')} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
