"""The cluster-wide prior cache: a named async Ray actor serving one `SemanticCache`.

Every env runner and learner in the cluster reaches the same actor by name, so a prior one
process paid the LLM for is a hit for all others. Calls are batched (a list of lookups or
inserts per round trip: a round trip costs ~1.5 ms, a lookup inside it ~0.03 ms). This
module owns the actor's name and creation; nothing else creates it.

Surviving its own death (`Recovery`): the actor saves its entries to a snapshot file every
few seconds while they change, and loads that file when it starts. Ray restarts a dead actor
up to `max_restarts` times, with the arguments it was created with, so a restarted actor
continues from its last snapshot; calls made while it restarts wait and are retried. Lost
on a restart: entries inserted since the last snapshot, the counters of `stats`, proposals
and parameter changes made at run time (the actor starts again from the configured ones).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from priorcache.platform.cache.core import CacheParams, Guard, Hit, SemanticCache
from priorcache.platform.cache.persist import load_snapshot, save_snapshot
from priorcache.platform.cache.proposals import ProposalCache

log = logging.getLogger(__name__)

RAY_NAMESPACE = "priorcache"

LookupRequest = tuple[np.ndarray, str, Guard, tuple[str, ...], str, str]
"""(state embedding, state text hash, guard, candidate texts, state text, key hash); the last
ones may be left out where the cache's mode does not need them (`SemanticCache.lookup`)."""
InsertRequest = tuple[np.ndarray, str, Guard, np.ndarray, tuple[str, ...], str, str]
"""(state embedding, state text hash, guard, log-probs, candidate texts, state text, key hash)."""
AuditReport = tuple[str, Guard, float, float]
"""(entry text hash, guard, similarity of the hit, KL(cached || fresh))."""


def cache_actor_name(namespace: str) -> str:
    """Ray actor name of the cache serving one cache namespace."""
    return f"prior-cache/{namespace}"


@dataclass(frozen=True)
class Recovery:
    """How the cache actor survives its process dying (`prior.cache.max_restarts`, `snapshot_*`)."""

    max_restarts: int = 0
    """Times Ray restarts the actor; 0: a dead actor stays dead."""
    snapshot_path: str = ""
    """Snapshot file saved while running and loaded at (re)start; empty: none."""
    snapshot_every_s: float = 0.0
    """Seconds between snapshots (taken only when entries changed); 0: none."""


@ray.remote(num_cpus=0)
class CacheActor:
    """Serves a `SemanticCache` to the cluster; all methods are batched."""

    def __init__(self, params: CacheParams, dim: int, recovery: Recovery = Recovery()) -> None:
        self._cache = SemanticCache(params, dim)
        self._proposals = ProposalCache(params.capacity, enabled=params.mode != "off")
        # Clients compare versions for equality only: a restarted actor must not reuse one
        # they already saw, or they would keep parameters from before the restart.
        self._params_version = time.time_ns()
        self._recovery = recovery
        self._changed = False
        self._saver: asyncio.Task | None = None
        if recovery.snapshot_path and Path(recovery.snapshot_path).is_file():
            self._cache.restore(load_snapshot(recovery.snapshot_path, key="prior.cache.snapshot_path"))

    async def lookup(self, requests: list[LookupRequest]) -> tuple[list[Hit | None], CacheParams, int]:
        """Look up several states; returns the hits and the current parameters + version."""
        hits = [self._cache.lookup(*request) for request in requests]
        return hits, self._cache.params, self._params_version

    async def insert(self, items: list[InsertRequest]) -> None:
        """Store several priors."""
        for item in items:
            self._cache.insert(*item)
        self._entries_changed()

    async def lookup_proposals(self, key: str) -> tuple[str, ...] | None:
        """Cached action proposals under `key` (`proposals.proposal_key`), or None."""
        return self._proposals.lookup(key)

    async def insert_proposals(self, key: str, proposals: tuple[str, ...]) -> None:
        """Store action proposals."""
        self._proposals.insert(key, proposals)

    async def record_audits(self, reports: list[AuditReport]) -> None:
        """Audit outcomes of hits this actor's entries served (per-entry thresholds learn)."""
        for entry, guard, similarity, kl in reports:
            self._cache.record_audit(entry, guard, similarity, kl)
        self._entries_changed()  # per-entry thresholds are part of the entries

    async def snapshot(self) -> dict[str, Any]:
        """The live entries (see `SemanticCache.snapshot`)."""
        return self._cache.snapshot()

    async def restore(self, entries: dict[str, Any]) -> int:
        """Load snapshot entries; returns the number of live entries."""
        self._entries_changed()
        return self._cache.restore(entries)

    async def params(self) -> tuple[CacheParams, int]:
        """Current parameters and their version (bumped by every `set_params`)."""
        return self._cache.params, self._params_version

    async def set_params(self, **changes: Any) -> CacheParams:
        """Change some parameters at run time (any `CacheParams` field)."""
        params = CacheParams(**{**asdict(self._cache.params), **changes})
        self._cache.set_params(params)
        self._proposals.configure(params.capacity, enabled=params.mode != "off")
        self._params_version += 1
        self._entries_changed()  # a smaller capacity evicts
        return params

    async def stats(self) -> dict[str, float]:
        """Counters (lookups that reached the actor), size and parameters."""
        return {**self._cache.stats_dict(), **asdict(self._proposals.stats)}

    async def clear(self) -> None:
        """Drop every entry (priors and proposals)."""
        self._cache.clear()
        self._proposals.clear()
        self._entries_changed()

    def _entries_changed(self) -> None:
        """Mark the entries for the next snapshot; the snapshot loop starts with the first change."""
        self._changed = True
        if self._saver is None and self._recovery.snapshot_path and self._recovery.snapshot_every_s > 0:
            self._saver = asyncio.get_running_loop().create_task(self._save_periodically())

    async def _save_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._recovery.snapshot_every_s)
            if not self._changed:
                continue
            self._changed = False
            # Copied here, between calls, so it is consistent; compressed and written in a
            # thread so lookups are not held up for the write.
            entries = self._cache.snapshot()
            try:
                await asyncio.to_thread(save_snapshot, entries, self._recovery.snapshot_path)
            except OSError as err:
                self._changed = True
                log.warning("cache snapshot to %s failed (%s); retrying in %.0f s",
                            self._recovery.snapshot_path, err, self._recovery.snapshot_every_s)


def get_or_create_cache_actor(namespace: str, params: CacheParams, dim: int,
                              recovery: Recovery = Recovery()) -> ray.actor.ActorHandle:
    """The cache actor of `namespace`, created with `params` and `recovery` if it does not exist yet
    (an existing actor keeps the arguments it was created with), on the caller's node."""
    return CacheActor.options(
        name=cache_actor_name(namespace), namespace=RAY_NAMESPACE, get_if_exists=True,
        # On its creator's node (a run's driver): the default snapshot path is in the driver's run
        # folder, which other nodes lack, and a restart must find it there. The pin costs no
        # availability: the actor needs no CPU, and it dies with its creator anyway (its owner).
        # (A soft pin is not enough: measured, Ray placed 7 of 8 such actors on other nodes.)
        scheduling_strategy=NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False),
        max_restarts=recovery.max_restarts,
        # Calls wait out a restart and run again on the restarted actor (at least once: a
        # lookup may be counted twice, a repeated insert overwrites its own entry).
        max_task_retries=-1 if recovery.max_restarts else 0,
    ).remote(params, dim, recovery)
