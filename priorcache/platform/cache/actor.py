"""The cluster-wide prior cache: a named async Ray actor serving one `SemanticCache`.

Every env runner and learner in the cluster reaches the same actor by name, so a prior one
process paid the LLM for is a hit for all others. Calls are batched (a list of lookups or
inserts per round trip: a round trip costs ~1.5 ms, a lookup inside it ~0.03 ms). This
module owns the actor's name and creation; nothing else creates it.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import ray

from priorcache.platform.cache.core import CacheParams, Guard, Hit, SemanticCache
from priorcache.platform.cache.proposals import ProposalCache

RAY_NAMESPACE = "priorcache"

LookupRequest = tuple[np.ndarray, str, Guard, tuple[str, ...]]
"""(state embedding, state text hash, guard, candidate texts)."""
InsertRequest = tuple[np.ndarray, str, Guard, np.ndarray, tuple[str, ...]]
"""(state embedding, state text hash, guard, log-probs, candidate texts)."""
AuditReport = tuple[str, Guard, float, float]
"""(entry text hash, guard, similarity of the hit, KL(cached || fresh))."""


def cache_actor_name(namespace: str) -> str:
    """Ray actor name of the cache serving one cache namespace."""
    return f"prior-cache/{namespace}"


@ray.remote(num_cpus=0, max_restarts=0)
class CacheActor:
    """Serves a `SemanticCache` to the cluster; all methods are batched."""

    def __init__(self, params: CacheParams, dim: int) -> None:
        self._cache = SemanticCache(params, dim)
        self._proposals = ProposalCache(params.capacity, enabled=params.mode != "off")
        self._params_version = 0

    async def lookup(self, requests: list[LookupRequest]) -> tuple[list[Hit | None], CacheParams, int]:
        """Look up several states; returns the hits and the current parameters + version."""
        hits = [self._cache.lookup(*request) for request in requests]
        return hits, self._cache.params, self._params_version

    async def insert(self, items: list[InsertRequest]) -> None:
        """Store several priors."""
        for item in items:
            self._cache.insert(*item)

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

    async def snapshot(self) -> dict[str, Any]:
        """The live entries (see `SemanticCache.snapshot`)."""
        return self._cache.snapshot()

    async def restore(self, entries: dict[str, Any]) -> int:
        """Load snapshot entries; returns the number of live entries."""
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
        return params

    async def stats(self) -> dict[str, float]:
        """Counters (lookups that reached the actor), size and parameters."""
        return {**self._cache.stats_dict(), **asdict(self._proposals.stats)}

    async def clear(self) -> None:
        """Drop every entry (priors and proposals)."""
        self._cache.clear()
        self._proposals.clear()


def get_or_create_cache_actor(namespace: str, params: CacheParams, dim: int) -> ray.actor.ActorHandle:
    """The cache actor of `namespace`, created with `params` if it does not exist yet."""
    return CacheActor.options(
        name=cache_actor_name(namespace), namespace=RAY_NAMESPACE, get_if_exists=True
    ).remote(params, dim)
