"""The adaptive semantic cache of LLM priors: pure data structure, no Ray, no LLM.

An entry maps a state (its unit embedding and the hash of its text) to the prior log-probs
the LLM gave over a candidate-action set. A lookup hits when an entry with the same *guard*
(model id, prompt version, candidate-set hash) is close enough:

- `semantic`: cosine(query, entry) >= threshold (delta); the closest entry wins;
- `exact`: the state text is identical (the exact-match baseline);
- `off`: never hits, stores nothing (the uncached baseline).

Capacity K bounds the entries (least recently used evicted first); an entry that served
`refresh` hits is dropped on its next hit so the caller re-scores it with the LLM (r).
Parameters change at run time through `set_params` (the meta-optimizer relies on that).
Used both by the cluster-wide cache actor and by the per-process near-cache.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import numpy as np

MODES = ("semantic", "exact", "off")


@dataclass(frozen=True)
class Guard:
    """What a cached prior depends on besides the state: a hit needs all three equal."""

    model_id: str
    prompt_version: str
    candidates_hash: str

    @staticmethod
    def for_candidates(model_id: str, prompt_version: str, candidates: Sequence[str]) -> "Guard":
        """Guard of a prior over `candidates` (order matters: the prior is positional)."""
        return Guard(model_id, prompt_version, hash_texts(candidates))


@dataclass(frozen=True)
class CacheParams:
    """The tunable parameters of a cache (the meta-optimizer's search space)."""

    mode: str = "semantic"
    capacity: int = 1000
    threshold: float = 0.95
    refresh: int = 0
    temperature: float = 1.0
    """Served prior = log_softmax(cached log-probs / temperature); the meta-optimizer flattens
    priors (temperature > 1) while cached priors cost more KL than its budget."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"cache mode {self.mode!r}: choose one of {', '.join(MODES)}")
        if self.capacity < 1:
            raise ValueError(f"cache capacity must be >= 1, got {self.capacity}")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"cache threshold must be in (0, 1], got {self.threshold}")
        if self.refresh < 0:
            raise ValueError(f"cache refresh must be >= 0, got {self.refresh}")
        if not self.temperature > 0:
            raise ValueError(f"prior temperature must be > 0, got {self.temperature}")


@dataclass
class CacheStats:
    """Counters since creation (or the last `reset_stats`)."""

    lookups: int = 0
    hits: int = 0
    exact_hits: int = 0
    inserts: int = 0
    evictions: int = 0
    refreshes: int = 0

    @property
    def hit_rate(self) -> float:
        return self.hits / self.lookups if self.lookups else 0.0


@dataclass(frozen=True)
class Hit:
    """A lookup result: the cached prior and how close the entry was."""

    logp: np.ndarray
    similarity: float
    exact: bool


def hash_text(text: str) -> str:
    """Stable short digest of one text (exact-match key)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


def hash_texts(texts: Iterable[str]) -> str:
    """Stable short digest of an ordered sequence of texts."""
    digest = hashlib.blake2b(digest_size=12)
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


class SemanticCache:
    """Bounded prior cache with cosine-threshold lookups; see the module docstring.

    Storage is a preallocated embedding matrix so a lookup is one matrix-vector product
    over the live rows (K <= a few thousand: microseconds in numpy).
    """

    def __init__(self, params: CacheParams, dim: int) -> None:
        self.params = params
        self.dim = dim
        self.stats = CacheStats()
        self._clock = 0
        self._alloc(max(params.capacity, 1))

    def _alloc(self, rows: int) -> None:
        self._emb = np.zeros((rows, self.dim), dtype=np.float32)
        self._live = np.zeros(rows, dtype=bool)
        self._last_used = np.zeros(rows, dtype=np.int64)
        self._uses = np.zeros(rows, dtype=np.int64)
        self._guard: list[Guard | None] = [None] * rows
        self._text: list[str | None] = [None] * rows
        self._logp: list[np.ndarray | None] = [None] * rows
        self._by_text: dict[tuple[Guard, str], int] = {}
        # Rows per guard: a semantic lookup only compares against rows it could hit.
        self._rows_by_guard: dict[Guard, set[int]] = {}

    def __len__(self) -> int:
        return int(self._live.sum())

    def lookup(self, embedding: np.ndarray, text_hash: str, guard: Guard) -> Hit | None:
        """The cached prior for this state, or None (a miss). Counts the lookup."""
        self.stats.lookups += 1
        mode = self.params.mode
        if mode == "off":
            return None
        row = self._by_text.get((guard, text_hash))
        similarity = 1.0
        exact = row is not None
        if row is None and mode == "semantic":
            row, similarity = self._nearest(embedding, guard)
        if row is None:
            return None
        if self.params.refresh and self._uses[row] >= self.params.refresh:
            self._drop(row)
            self.stats.refreshes += 1
            return None
        self._clock += 1
        self._last_used[row] = self._clock
        self._uses[row] += 1
        self.stats.hits += 1
        self.stats.exact_hits += int(exact)
        return Hit(logp=self._logp[row], similarity=similarity, exact=exact)  # type: ignore[arg-type]

    def _nearest(self, embedding: np.ndarray, guard: Guard) -> tuple[int | None, float]:
        candidates = self._rows_by_guard.get(guard)
        if not candidates:
            return None, 0.0
        rows = np.fromiter(candidates, dtype=np.int64, count=len(candidates))
        sims = self._emb[rows] @ embedding.astype(np.float32, copy=False)
        best = int(np.argmax(sims))
        if sims[best] >= self.params.threshold:
            return int(rows[best]), float(sims[best])
        return None, float(sims[best])

    def insert(self, embedding: np.ndarray, text_hash: str, guard: Guard, logp: np.ndarray) -> None:
        """Store (or overwrite) the prior of a state; evicts the LRU entry when full."""
        if self.params.mode == "off":
            return
        row = self._by_text.get((guard, text_hash))
        if row is None:
            free = np.flatnonzero(~self._live)
            row = int(free[0]) if free.size else self._evict_lru()
        self._clock += 1
        self._emb[row] = embedding
        self._live[row] = True
        self._last_used[row] = self._clock
        self._uses[row] = 0
        self._guard[row] = guard
        self._text[row] = text_hash
        self._logp[row] = np.asarray(logp, dtype=np.float64)
        self._by_text[(guard, text_hash)] = row
        self._rows_by_guard.setdefault(guard, set()).add(row)
        self.stats.inserts += 1

    def _evict_lru(self) -> int:
        live = np.flatnonzero(self._live)
        row = int(live[np.argmin(self._last_used[live])])
        self._drop(row)
        self.stats.evictions += 1
        return row

    def _drop(self, row: int) -> None:
        guard = self._guard[row]
        self._live[row] = False
        self._by_text.pop((guard, self._text[row]), None)  # type: ignore[arg-type]
        rows = self._rows_by_guard[guard]  # type: ignore[index]
        rows.discard(row)
        if not rows:
            del self._rows_by_guard[guard]  # type: ignore[arg-type]
        self._guard[row] = self._text[row] = self._logp[row] = None

    def set_params(self, params: CacheParams) -> None:
        """Change parameters at run time; shrinking the capacity evicts LRU entries."""
        while len(self) > params.capacity:
            self._evict_lru()
        if params.capacity != self._live.size:
            self._resize(params.capacity)
        self.params = params

    def _resize(self, rows: int) -> None:
        keep = np.flatnonzero(self._live)
        keep = keep[np.argsort(self._last_used[keep])]
        old = (self._emb, self._last_used, self._uses, self._guard, self._text, self._logp)
        self._alloc(rows)
        for new_row, old_row in enumerate(keep):
            self._emb[new_row] = old[0][old_row]
            self._live[new_row] = True
            self._last_used[new_row] = old[1][old_row]
            self._uses[new_row] = old[2][old_row]
            self._guard[new_row] = old[3][old_row]
            self._text[new_row] = old[4][old_row]
            self._logp[new_row] = old[5][old_row]
            self._by_text[(old[3][old_row], old[4][old_row])] = new_row  # type: ignore[index]
            self._rows_by_guard.setdefault(old[3][old_row], set()).add(new_row)  # type: ignore[arg-type]

    def clear(self) -> None:
        """Drop every entry (statistics are kept)."""
        self._alloc(self._live.size)

    def stats_dict(self) -> dict[str, float]:
        """Counters, hit rate, size and parameters, for metrics."""
        return {**asdict(self.stats), "hit_rate": self.stats.hit_rate, "size": len(self),
                "capacity": self.params.capacity, "threshold": self.params.threshold,
                "refresh": self.params.refresh}
