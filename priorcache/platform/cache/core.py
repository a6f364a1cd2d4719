"""The adaptive semantic cache of LLM priors: pure data structure, no Ray, no LLM.

An entry maps a state (its unit embedding and the hash of its text) to the prior log-probs
the LLM gave over a candidate-action set. A lookup hits when an entry with the same *guard*
(model id, prompt version, candidate-set hash) is close enough:

- `semantic`: cosine(query, entry) >= threshold (delta); the closest entry wins;
- `exact`: the state text is identical (the exact-match baseline);
- `keyed`: the state's *key* is identical (the part of the state its env names as what the prior
  hinges on, `cache_key`; the whole text where the env names none), and the entry passes the
  relevance gate (`relevance.py`): the two texts do not differ in any word the entry's top
  command names, or the entry is *decisive*: its top command leads the next by at least
  `decisive_margin` nats. Several entries share a key; the latest one the gate lets
  through serves;
- `off`: never hits, stores nothing (the uncached baseline).

Capacity K bounds the entries (least recently used evicted first); an entry that served
`refresh` hits is dropped on its next hit so the caller re-scores it with the LLM (r).
Parameters change at run time through `set_params` (the meta-optimizer relies on that).
Used both by the cluster-wide cache actor and by the per-process near-cache.

Two options go past one global threshold over identical candidate sets:
- `candidates="remap"`: the guard's candidate hash is not part of the match; an entry's
  log-probs are reused per command string. The scoring backend scores each candidate on its
  own (the prompt does not list the candidates), so renormalising the scores of a subset is
  what the LLM would have answered, up to its numeric noise. Candidates the entry never
  scored get its lowest score; an entry hits only when it scored at least `min_coverage` of
  the current candidates.
- `per_entry=True` (vCache-style): every entry carries its own threshold, starting at the
  global one. `record_audit` moves it: an audited hit that cost more than `kl_tolerance`
  raises the entry's threshold above that hit's similarity; a cheap one lowers it by
  `PER_ENTRY_STEP`, never below the highest similarity that failed nor more than
  `PER_ENTRY_SPAN` below the global threshold it started from.

`snapshot`/`restore` turn the entries into plain arrays and back (warm starts, `persist.py`).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterable, Sequence

import numpy as np

from priorcache.platform.cache.relevance import decisive, untouched
from priorcache.platform.logprob import log_softmax

MODES = ("semantic", "exact", "keyed", "off")
CANDIDATE_MATCHING = ("same", "remap")
PER_ENTRY_STEP = 0.01
"""How far a cheap audited hit lowers its entry's threshold."""
PER_ENTRY_SPAN = 0.1
"""Per-entry thresholds stay within this distance below the global threshold at insertion."""
_ANY_CANDIDATES = "*"


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
    """A semantic or keyed hit is served as log_softmax(cached log-probs / temperature); the meta-optimizer
    flattens them (temperature > 1) while they cost more KL than its budget. Exact hits and the
    LLM's answers are served unchanged."""
    candidates: str = "same"
    """`same`: a hit needs the identical candidate set; `remap`: scores reused per command."""
    min_coverage: float = 1.0
    """`remap`: share of the current candidates an entry must have scored to hit."""
    per_entry: bool = False
    """Every entry learns its own threshold from audits (see the module docstring)."""
    kl_tolerance: float = 0.1
    """`per_entry`: an audited hit costing more KL (nats) than this counts as a false hit."""
    decisive_margin: float = 0.25
    """`keyed`: an entry whose top command leads its second by at least this many nats serves
    even where the relevance gate would refuse it (`relevance.decisive`); inf: never."""

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
        if self.candidates not in CANDIDATE_MATCHING:
            raise ValueError(f"cache candidates {self.candidates!r}: choose one of {', '.join(CANDIDATE_MATCHING)}")
        if not 0.0 < self.min_coverage <= 1.0:
            raise ValueError(f"cache min_coverage must be in (0, 1], got {self.min_coverage}")
        if not self.decisive_margin >= 0.0:
            raise ValueError(f"cache decisive_margin must be >= 0 nats, got {self.decisive_margin}")


@dataclass
class CacheStats:
    """Counters since creation (or the last `reset_stats`)."""

    lookups: int = 0
    hits: int = 0
    exact_hits: int = 0
    inserts: int = 0
    evictions: int = 0
    refreshes: int = 0
    remapped_hits: int = 0
    audits: int = 0
    false_hits: int = 0

    @property
    def hit_rate(self) -> float:
        return self.hits / self.lookups if self.lookups else 0.0


@dataclass(frozen=True)
class Hit:
    """A lookup result: the cached prior and how close the entry was."""

    logp: np.ndarray
    """log p(a|s) over the *requested* candidates (remapped when the entry's set differs)."""
    similarity: float
    exact: bool
    """Same state text and same candidates: the LLM would answer the same (KL 0)."""
    entry: str = ""
    """Text hash of the entry that answered (audits report back to it)."""
    entry_threshold: float = 0.0
    """The entry's own threshold (`per_entry`), so a near-cache copy keeps what it learned."""


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


def remap(logp: np.ndarray, scored: Sequence[str], wanted: Sequence[str]) -> tuple[np.ndarray, float]:
    """An entry's log-probs over `scored` re-expressed over `wanted`, and the covered share.

    Commands the entry never scored get its lowest log-prob (an unseen command is assumed no
    better than the worst one it knows); the result is renormalised over `wanted`.
    """
    index = {text: i for i, text in enumerate(scored)}
    floor = float(np.min(logp))
    picked = np.array([logp[index[a]] if a in index else floor for a in wanted], dtype=np.float64)
    covered = sum(a in index for a in wanted) / len(wanted)
    return log_softmax(picked), covered


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
        self._threshold = np.zeros(rows, dtype=np.float64)
        self._floor = np.zeros(rows, dtype=np.float64)
        self._guard: list[Guard | None] = [None] * rows
        self._text: list[str | None] = [None] * rows
        self._logp: list[np.ndarray | None] = [None] * rows
        self._candidates: list[tuple[str, ...] | None] = [None] * rows
        self._state_text: list[str | None] = [None] * rows
        self._key_hash: list[str | None] = [None] * rows
        self._by_text: dict[tuple[Guard, str], int] = {}
        # Rows per match key: a semantic lookup only compares against rows it could hit.
        self._rows_by_key: dict[Guard, set[int]] = {}
        # Rows per state key, oldest first (`keyed`: the latest entry the gate passes serves).
        self._rows_by_state_key: dict[tuple[Guard, str], list[int]] = {}

    def __len__(self) -> int:
        return int(self._live.sum())

    def _key(self, guard: Guard) -> Guard:
        """What two entries must share to answer for each other under the current matching."""
        if self.params.candidates == "remap":
            return Guard(guard.model_id, guard.prompt_version, _ANY_CANDIDATES)
        return guard

    def lookup(self, embedding: np.ndarray, text_hash: str, guard: Guard,
               candidates: Sequence[str] | None = None, text: str | None = None,
               key_hash: str | None = None) -> Hit | None:
        """The cached prior for this state, or None (a miss). Counts the lookup.

        `candidates` (the texts behind `guard.candidates_hash`) are needed for `remap` and
        `keyed`; `text` (the state text) for `keyed`, with `key_hash` (`hash_text` of the
        state's key; None: the whole text is the key).
        """
        self.stats.lookups += 1
        if self.params.mode == "off":
            return None
        self._check_candidates("lookup", candidates)
        if self.params.mode == "keyed" and (candidates is None or text is None):
            raise ValueError("a cache with mode='keyed' needs the candidate and state texts in lookup()")
        key = self._key(guard)
        row, similarity = self._by_text.get((key, text_hash)), 1.0
        served = self._serve(row, guard, candidates) if row is not None else None
        if served is None and self.params.mode == "semantic":
            row, similarity, served = self._nearest(embedding, guard, candidates)
        if served is None and self.params.mode == "keyed":
            row, served = self._gated(guard, candidates, text, key_hash or text_hash)  # type: ignore[arg-type]
            if row is not None:
                similarity = float(self._similarity(np.array([row]), embedding)[0])
        if served is None:
            return None
        if self.params.refresh and self._uses[row] >= self.params.refresh:
            self._drop(row)
            self.stats.refreshes += 1
            return None
        logp, same_candidates = served
        self._clock += 1
        self._last_used[row] = self._clock
        self._uses[row] += 1
        exact = similarity == 1.0 and self._text[row] == text_hash and same_candidates
        self.stats.hits += 1
        self.stats.exact_hits += int(exact)
        self.stats.remapped_hits += int(not same_candidates)
        return Hit(logp=logp, similarity=similarity, exact=exact, entry=self._text[row],  # type: ignore[arg-type]
                   entry_threshold=float(self._threshold[row]))

    def _serve(self, row: int, guard: Guard, candidates: Sequence[str] | None) -> tuple[np.ndarray, bool] | None:
        """The row's prior over the requested candidates, or None when it covers too few."""
        logp = self._logp[row]
        if self._guard[row] == guard:  # type: ignore[comparison-overlap]
            return logp, True  # type: ignore[return-value]
        remapped, covered = remap(logp, self._candidates[row], candidates)  # type: ignore[arg-type]
        return (remapped, False) if covered >= self.params.min_coverage else None

    def _gated(self, guard: Guard, candidates: Sequence[str], text: str, key_hash: str
               ) -> tuple[int | None, tuple[np.ndarray, bool] | None]:
        """The latest row under this state key that the relevance gate lets serve `text`."""
        for row in reversed(self._rows_by_state_key.get((self._key(guard), key_hash), ())):
            # An entry stored without its text (an older snapshot) serves its own text only.
            served = self._serve(row, guard, candidates) if self._state_text[row] is not None else None
            if served is None:
                continue
            logp = served[0]
            if decisive(logp, self.params.decisive_margin) or untouched(
                    self._state_text[row], text, candidates[int(np.argmax(logp))]):  # type: ignore[arg-type]
                return row, served
        return None, None

    def _check_candidates(self, call: str, candidates: Sequence[str] | None) -> None:
        if self.params.candidates == "remap" and candidates is None:
            raise ValueError(f"a cache with candidates='remap' needs the candidate texts in {call}()")

    def _similarity(self, rows: np.ndarray, embedding: np.ndarray) -> np.ndarray:
        """Cosine of each row's embedding with `embedding` (unit vectors)."""
        # float32 dot products of unit vectors can land a few ulps above 1 (or below -1); a
        # similarity outside [-1, 1] would make the distance 1 - s negative downstream.
        return np.clip(self._emb[rows] @ embedding.astype(np.float32, copy=False), -1.0, 1.0)

    def _nearest(self, embedding: np.ndarray, guard: Guard, candidates: Sequence[str] | None
                 ) -> tuple[int | None, float, tuple[np.ndarray, bool] | None]:
        """The most similar row above its threshold that can serve these candidates."""
        rows_set = self._rows_by_key.get(self._key(guard))
        if not rows_set:
            return None, 0.0, None
        rows = np.fromiter(rows_set, dtype=np.int64, count=len(rows_set))
        sims = self._similarity(rows, embedding)
        limits = self._threshold[rows] if self.params.per_entry else self.params.threshold
        passing = np.flatnonzero(sims >= limits)
        for i in passing[np.argsort(-sims[passing])]:
            served = self._serve(int(rows[i]), guard, candidates)
            if served is not None:
                return int(rows[i]), float(sims[i]), served
        return None, 0.0, None

    def insert(self, embedding: np.ndarray, text_hash: str, guard: Guard, logp: np.ndarray,
               candidates: Sequence[str] | None = None, text: str | None = None, key_hash: str | None = None,
               *, threshold: float | None = None) -> None:
        """Store (or overwrite) the prior of a state; evicts the LRU entry when full.

        `text` and `key_hash` are the state text and its key's hash (see `lookup`). `threshold`
        seeds a `per_entry` threshold (a near-cache copying a learned entry); by default an
        entry starts at the global threshold.
        """
        if self.params.mode == "off":
            return
        self._check_candidates("insert", candidates)
        key = self._key(guard)
        row = self._by_text.get((key, text_hash))
        if row is None:
            free = np.flatnonzero(~self._live)
            row = int(free[0]) if free.size else self._evict_lru()
        else:
            self._unindex(row)
        self._clock += 1
        self._emb[row] = embedding
        self._live[row] = True
        self._last_used[row] = self._clock
        self._uses[row] = 0
        self._threshold[row] = self.params.threshold if threshold is None else threshold
        self._floor[row] = max(0.0, self.params.threshold - PER_ENTRY_SPAN)
        self._guard[row] = guard
        self._text[row] = text_hash
        self._logp[row] = np.asarray(logp, dtype=np.float64)
        self._candidates[row] = tuple(candidates) if candidates is not None else None
        self._state_text[row] = text
        self._key_hash[row] = key_hash or text_hash
        self._by_text[(key, text_hash)] = row
        self._rows_by_key.setdefault(key, set()).add(row)
        self._rows_by_state_key.setdefault((key, self._key_hash[row]), []).append(row)  # type: ignore[arg-type]
        self.stats.inserts += 1

    def record_audit(self, entry: str, guard: Guard, similarity: float, kl: float) -> None:
        """An audit of a hit served by `entry`: learn its threshold (`per_entry`), count it."""
        self.stats.audits += 1
        false_hit = kl > self.params.kl_tolerance
        self.stats.false_hits += int(false_hit)
        row = self._by_text.get((self._key(guard), entry))
        if row is None or not self.params.per_entry:
            return
        if false_hit:
            # Just above the failed similarity: that hit, and any less similar one, now misses.
            self._floor[row] = max(self._floor[row], min(1.0, similarity + 1e-4))
            self._threshold[row] = max(self._threshold[row], self._floor[row])
        else:
            self._threshold[row] = max(self._floor[row], self._threshold[row] - PER_ENTRY_STEP)

    def _evict_lru(self) -> int:
        live = np.flatnonzero(self._live)
        row = int(live[np.argmin(self._last_used[live])])
        self._drop(row)
        self.stats.evictions += 1
        return row

    def _unindex(self, row: int) -> None:
        key = self._key(self._guard[row])  # type: ignore[arg-type]
        self._by_text.pop((key, self._text[row]), None)  # type: ignore[arg-type]
        rows = self._rows_by_key.get(key, set())
        rows.discard(row)
        if not rows:
            self._rows_by_key.pop(key, None)
        state_key = (key, self._key_hash[row])
        keyed = self._rows_by_state_key.get(state_key, [])  # type: ignore[arg-type]
        if row in keyed:
            keyed.remove(row)
        if not keyed:
            self._rows_by_state_key.pop(state_key, None)  # type: ignore[arg-type]

    def _drop(self, row: int) -> None:
        self._unindex(row)
        self._live[row] = False
        self._guard[row] = self._text[row] = self._logp[row] = self._candidates[row] = None
        self._state_text[row] = self._key_hash[row] = None

    def set_params(self, params: CacheParams) -> None:
        """Change parameters at run time; shrinking the capacity evicts LRU entries."""
        while len(self) > params.capacity:
            self._evict_lru()
        rebuild = params.candidates != self.params.candidates or params.capacity != self._live.size
        entries = self.snapshot() if rebuild else None
        self.params = params
        if entries is not None:
            self._alloc(params.capacity)
            self.restore(entries)

    def clear(self) -> None:
        """Drop every entry (statistics are kept)."""
        self._alloc(self._live.size)

    def snapshot(self) -> dict[str, Any]:
        """The live entries, least recently used first, as plain arrays and lists."""
        rows = np.flatnonzero(self._live)
        rows = rows[np.argsort(self._last_used[rows])]
        return {
            "embedding": self._emb[rows].copy(),
            "text_hash": [self._text[r] for r in rows],
            "guard": [(g.model_id, g.prompt_version, g.candidates_hash) for g in (self._guard[r] for r in rows)],
            "logp": [self._logp[r] for r in rows],
            "candidates": [self._candidates[r] for r in rows],
            "state_text": [self._state_text[r] for r in rows],
            "key_hash": [self._key_hash[r] for r in rows],
            "threshold": self._threshold[rows].copy(),
            "uses": self._uses[rows].copy(),
        }

    def restore(self, entries: dict[str, Any]) -> int:
        """Insert the entries of a `snapshot` (in its order: the last ones are kept when the
        capacity is smaller); returns how many are live. Counters are not changed. Entries
        saved without their state texts (older snapshots) hit a keyed cache on identical text only."""
        stats = replace(self.stats)
        n = len(entries["text_hash"])
        texts = entries.get("state_text") or [None] * n
        key_hashes = entries.get("key_hash") or [None] * n
        for i in range(max(0, n - self.params.capacity), n):
            self.insert(entries["embedding"][i], entries["text_hash"][i], Guard(*entries["guard"][i]),
                        entries["logp"][i], entries["candidates"][i], texts[i], key_hashes[i],
                        threshold=float(entries["threshold"][i]))
            self._uses[self._by_text[(self._key(Guard(*entries["guard"][i])), entries["text_hash"][i])]] = \
                entries["uses"][i]
        self.stats = stats
        return len(self)

    def stats_dict(self) -> dict[str, float]:
        """Counters, hit rate, size and parameters, for metrics."""
        return {**asdict(self.stats), "hit_rate": self.stats.hit_rate, "size": len(self),
                "capacity": self.params.capacity, "threshold": self.params.threshold,
                "refresh": self.params.refresh, "temperature": self.params.temperature}
