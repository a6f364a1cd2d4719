"""Cached action proposals: the LLM's suggested arguments of open actions (WebShop's queries).

Open actions such as `search[...]` have no candidate list to score, so the LLM proposes their
arguments (`PriorScorer.propose`), and the env offers them as candidates. A proposal costs an
LLM generation (several times a scoring call), so it is cached next to the priors, under the
same guards: the key digests the model id, the prompt version, the action's opening, the
number asked for and the state text.

Matching is exact only, whatever the prior cache's mode: a proposal answers one state's
instruction, and a semantic neighbour's queries would search for a neighbour's product.
Cache mode `off` stores nothing (the uncached baseline asks the LLM every time). Capacity is
the prior cache's, least recently used first out.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from priorcache.platform.cache.core import hash_texts


def proposal_key(model_id: str, prompt_version: str, opening: str, n: int, state: str) -> str:
    """What a cached proposal depends on, as one digest."""
    return hash_texts((model_id, prompt_version, opening, str(n), state))


@dataclass
class ProposalStats:
    """Counters since creation."""

    proposal_lookups: int = 0
    proposal_hits: int = 0


class ProposalCache:
    """Bounded exact-match LRU of proposals; see the module docstring."""

    def __init__(self, capacity: int, enabled: bool = True) -> None:
        self.capacity = capacity
        self.enabled = enabled
        self.stats = ProposalStats()
        self._entries: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: str) -> tuple[str, ...] | None:
        """The proposals stored under `key`, or None; counts the lookup."""
        self.stats.proposal_lookups += 1
        proposals = self._entries.get(key)
        if proposals is not None:
            self._entries.move_to_end(key)
            self.stats.proposal_hits += 1
        return proposals

    def insert(self, key: str, proposals: tuple[str, ...]) -> None:
        """Store proposals (nothing when disabled), evicting the least recently used beyond capacity."""
        if not self.enabled:
            return
        self._entries[key] = tuple(proposals)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()

    def configure(self, capacity: int, enabled: bool) -> None:
        """Follow the prior cache's parameters (the meta-optimizer may change its capacity)."""
        self.capacity, self.enabled = capacity, enabled
        if not enabled:
            self.clear()
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
