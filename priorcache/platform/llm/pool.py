"""The LLM replica pool: a named async Ray actor in front of `LLMReplica` actors.

Callers anywhere in the cluster send single prior requests; the pool
- de-duplicates identical in-flight requests (single flight: one LLM call, many waiters),
- batches the requests that queue up while every replica is busy (up to `max_batch` per
  replica call), so concurrent callers share replica calls,
- serves KL-audit re-scorings only when no real request waits (audits must not slow misses),
- serves action proposals (`propose`: generated arguments of open actions such as WebShop's
  `search[...]`) one per replica call, before waiting priors, since an env is blocked on each,
- records the latency of every replica call and counts the requests that reached an LLM
  (`llm_queries` for priors, `llm_proposals` for proposals),
- replaces a replica that died (`llm_replica_restarts`, at most `max_replica_restarts`): the
  requests of its unfinished call go back to the front of the queue (`llm_requeued`), so
  another replica answers them, and the replacement joins once it has loaded its model.
It does not cache: a finished request is forgotten (the prior cache sits in front).

Where replicas run comes from `replica_options`: CPUs and GPUs per replica, the Python they run
under, and for tensor-parallel vLLM a placement group of one-GPU bundles per replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from dataclasses import asdict
from typing import Any

import numpy as np
import ray
from ray.exceptions import RayActorError
from ray.util.placement_group import PlacementGroup
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from priorcache.platform.cache.actor import RAY_NAMESPACE
from priorcache.platform.cache.core import hash_text
from priorcache.platform.config import LLMConfig
from priorcache.platform.llm.replica import LLMReplica

_LATENCY_HISTORY = 100_000

Request = tuple[str, tuple[str, ...]]
ProposalRequest = tuple[str, str, int]
"""(state, action opening, how many)."""


def pool_actor_name(cfg: LLMConfig) -> str:
    """One pool per distinct LLM configuration in a cluster."""
    return f"llm-pool/{hash_text(json.dumps(asdict(cfg), sort_keys=True))}"


def replica_bundles(cfg: LLMConfig) -> list[dict[str, float]]:
    """Placement-group bundles of one replica: one per GPU of a tensor-parallel model, [] otherwise.

    vLLM's Ray executor puts one worker (1 GPU, 0 CPU) on each bundle that has a GPU; the
    replica actor itself (0 GPU) takes its CPUs from bundle 0, so it lands beside a worker."""
    if cfg.tensor_parallel_size <= 1:
        return []
    first = {"GPU": 1.0, "CPU": float(cfg.num_cpus_per_replica)}
    rest = [{"GPU": 1.0} for _ in range(cfg.tensor_parallel_size - 1)]
    return [{key: amount for key, amount in first.items() if amount > 0}, *rest]


def replica_options(cfg: LLMConfig, placement_group: PlacementGroup | None = None) -> dict[str, Any]:
    """Keyword arguments of `LLMReplica.options` for one replica.

    `placement_group` (required when `replica_bundles(cfg)` has bundles) is that replica's own,
    made of those bundles; the replica runs in bundle 0 and vLLM finds the group from inside it
    (`ray.util.get_current_placement_group`)."""
    options: dict[str, Any] = {"num_cpus": cfg.num_cpus_per_replica, "num_gpus": cfg.num_gpus_per_replica}
    if cfg.replica_python:
        options["runtime_env"] = {"py_executable": cfg.replica_python}
    if replica_bundles(cfg):
        if placement_group is None:
            raise ValueError(
                f"prior.llm.tensor_parallel_size={cfg.tensor_parallel_size} needs a placement group per "
                "replica (of replica_bundles(cfg)); none was given"
            )
        options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
            placement_group=placement_group, placement_group_bundle_index=0
        )
    return options


def make_replica(cfg: LLMConfig) -> ray.actor.ActorHandle:
    """One `LLMReplica` actor placed as `replica_options` says (its placement group made here)."""
    bundles = replica_bundles(cfg)
    # PACK keeps a model's GPUs on one node where one has room (tensor parallelism across nodes
    # is slow) and otherwise spreads them instead of waiting for such a node; vLLM logs a
    # warning when the group spans nodes.
    group = ray.util.placement_group(bundles, strategy="PACK") if bundles else None
    return LLMReplica.options(**replica_options(cfg, group)).remote(cfg)


def latency_percentiles(samples: Any, prefix: str) -> dict[str, float]:
    """`{prefix}_p50`, `{prefix}_p95` of latency samples (empty: no keys)."""
    if len(samples) == 0:
        return {}
    p50, p95 = np.percentile(np.asarray(samples, dtype=np.float64), [50, 95])
    return {f"{prefix}_p50": float(p50), f"{prefix}_p95": float(p95)}


@ray.remote(num_cpus=0, max_restarts=0)
class ReplicaPool:
    """Single-flight, batching front of the LLM replicas; see the module docstring."""

    def __init__(self, cfg: LLMConfig) -> None:
        self._cfg = cfg
        self._replicas = [make_replica(cfg) for _ in range(cfg.replicas)]
        self._replica_restarts = 0
        self._requeued = 0
        self._info: dict[str, str] | None = None
        self._inflight: dict[Request, asyncio.Future] = {}
        self._pending: deque[Request] = deque()
        self._pending_audits: deque[Request] = deque()
        self._proposals_inflight: dict[ProposalRequest, asyncio.Future] = {}
        self._pending_proposals: deque[ProposalRequest] = deque()
        self._proposals = 0
        self._idle: asyncio.Queue[int] | None = None
        self._wakeup: asyncio.Event | None = None
        self._queries = 0
        self._audit_queries = 0
        self._calls = 0
        self._deduplicated = 0
        self._latencies: deque[float] = deque(maxlen=_LATENCY_HISTORY)
        self._window: list[float] = []

    async def info(self) -> dict[str, str]:
        """`model_id` and `prompt_version`: what cached priors are guarded by."""
        if self._info is None:
            # Every replica runs the same model and template, so one answer describes all.
            self._info = await self._replicas[0].info.remote()
        return self._info

    async def prior(self, state: str, candidates: list[str], audit: bool = False) -> np.ndarray:
        """log p(a|state) over `candidates`, from an LLM replica.

        `audit=True` marks a re-scoring of a cache hit (the KL audit): it is counted under
        `llm_audit_queries`, not `llm_queries`, so audits never hide in the query savings.
        """
        self._start_dispatcher()
        key = (state, tuple(candidates))
        future = self._inflight.get(key)
        if future is not None:
            self._deduplicated += 1
            return await asyncio.shield(future)
        future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        (self._pending_audits if audit else self._pending).append(key)
        self._wakeup.set()  # type: ignore[union-attr]
        return await asyncio.shield(future)

    async def propose(self, state: str, opening: str, n: int) -> list[str]:
        """Up to `n` arguments for the open action starting with `opening`, from an LLM replica
        (see `PriorScorer.propose`); identical requests in flight share one call."""
        self._start_dispatcher()
        key = (state, opening, n)
        future = self._proposals_inflight.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._proposals_inflight[key] = future
            self._pending_proposals.append(key)
            self._wakeup.set()  # type: ignore[union-attr]
        else:
            self._deduplicated += 1
        return await asyncio.shield(future)

    def _start_dispatcher(self) -> None:
        if self._idle is not None:
            return
        self._idle = asyncio.Queue()
        for index in range(len(self._replicas)):
            self._idle.put_nowait(index)
        self._wakeup = asyncio.Event()
        asyncio.get_running_loop().create_task(self._dispatch())

    async def _dispatch(self) -> None:
        assert self._idle is not None and self._wakeup is not None
        while True:
            replica = await self._idle.get()
            while not (self._pending or self._pending_audits or self._pending_proposals):
                self._wakeup.clear()
                await self._wakeup.wait()
            if self._pending_proposals:
                asyncio.get_running_loop().create_task(self._propose(replica, self._pending_proposals.popleft()))
                continue
            queue, audit = (self._pending, False) if self._pending else (self._pending_audits, True)
            batch = [queue.popleft() for _ in range(min(self._cfg.max_batch, len(queue)))]
            asyncio.get_running_loop().create_task(self._score(replica, batch, audit))

    async def replicas(self) -> list[ray.actor.ActorHandle]:
        """The replica actors now in rotation (to inspect them, or kill one in a drill)."""
        return list(self._replicas)

    def _replace(self, replica: int, err: RayActorError) -> bool:
        """Start a replacement for a replica that died; False when none may be started."""
        # A replica whose constructor failed would fail the same way again.
        if err.actor_init_failed or self._replica_restarts >= self._cfg.max_replica_restarts:
            return False
        ray.kill(self._replicas[replica])  # one that is unreachable but alive must free its CPUs
        self._replicas[replica] = make_replica(self._cfg)
        self._replica_restarts += 1
        return True

    async def _rejoin(self, replica: int) -> None:
        """Back into rotation once the replacement has loaded its model, so that the requeued
        requests go to a replica that is ready, not wait for this one."""
        assert self._idle is not None
        with contextlib.suppress(RayActorError):  # a replacement that died fails its next call
            await self._replicas[replica].info.remote()
        self._idle.put_nowait(replica)

    def _requeue(self, queue: deque, keys: list) -> None:
        """Requests of a dead replica's call, back at the front of their queue (oldest first)."""
        assert self._wakeup is not None
        queue.extendleft(reversed(keys))
        self._requeued += len(keys)
        self._wakeup.set()

    async def _score(self, replica: int, batch: list[Request], audit: bool) -> None:
        assert self._idle is not None
        started = time.perf_counter()
        replaced = False
        try:
            priors = await self._replicas[replica].prior.remote(
                [state for state, _ in batch], [list(cands) for _, cands in batch]
            )
        except RayActorError as err:
            replaced = self._replace(replica, err)
            if replaced:
                self._requeue(self._pending_audits if audit else self._pending, batch)
            else:
                for key in batch:
                    self._inflight.pop(key).set_exception(err)
        except Exception as err:  # the replica's error goes to every waiter, not lost here
            for key in batch:
                self._inflight.pop(key).set_exception(err)
        else:
            latency_ms = (time.perf_counter() - started) * 1e3
            self._latencies.append(latency_ms)
            self._window.append(latency_ms)
            self._calls += 1
            if audit:
                self._audit_queries += len(batch)
            else:
                self._queries += len(batch)
            for key, prior in zip(batch, priors):
                self._inflight.pop(key).set_result(prior)
        finally:
            self._back_to_rotation(replica, replaced)

    async def _propose(self, replica: int, key: ProposalRequest) -> None:
        assert self._idle is not None
        replaced = False
        try:
            proposals = await self._replicas[replica].propose.remote(*key)
        except RayActorError as err:
            replaced = self._replace(replica, err)
            if replaced:
                self._requeue(self._pending_proposals, [key])
            else:
                self._proposals_inflight.pop(key).set_exception(err)
        except Exception as err:  # the replica's error goes to every waiter, not lost here
            self._proposals_inflight.pop(key).set_exception(err)
        else:
            self._proposals += 1
            self._proposals_inflight.pop(key).set_result(proposals)
        finally:
            self._back_to_rotation(replica, replaced)

    def _back_to_rotation(self, replica: int, replaced: bool) -> None:
        assert self._idle is not None
        if replaced:
            asyncio.get_running_loop().create_task(self._rejoin(replica))
        else:
            self._idle.put_nowait(replica)

    async def stats(self, window: bool = False) -> dict[str, float]:
        """Counters and call-latency percentiles (lifetime, or since the last window read)."""
        samples = self._latencies
        if window:
            samples, self._window = self._window, []
        return {
            "llm_queries": self._queries,
            "llm_audit_queries": self._audit_queries,
            "llm_proposals": self._proposals,
            "llm_calls": self._calls,
            "llm_deduplicated": self._deduplicated,
            "llm_replica_restarts": self._replica_restarts,
            "llm_requeued": self._requeued,
            **latency_percentiles(samples, "llm_latency_ms"),
        }


def get_or_create_pool(cfg: LLMConfig) -> ray.actor.ActorHandle:
    """The replica pool for `cfg`, created (with its replicas) if it does not exist yet."""
    return ReplicaPool.options(name=pool_actor_name(cfg), namespace=RAY_NAMESPACE, get_if_exists=True).remote(cfg)
