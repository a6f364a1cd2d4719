"""The prior request path of one process: embed -> near-cache -> cache actor -> LLM pool.

`PriorClient.request(state_text, candidates, key)` returns log p_LLM(a|s) over the candidates and
says where it came from (`near`, `cache`, `llm` or `fallback`) and how long it took. The
near-cache is a small `SemanticCache` in this process with the shared cache's parameters
(re-read every `near_sync_s` seconds, since the meta-optimizer changes them at run time).
A request the LLM does not answer within `prior.llm.timeout_s` gets the `prior.llm.fallback`
prior (uniform) and is not cached. While the cache actor restarts, calls to it wait and are
retried by Ray (`cache/actor.py`), so a restart slows requests down but fails none. A
fraction of hits is audited against a fresh LLM prior (`cache/audit.py`); the outcome goes
back to the entry that served the hit (per-entry thresholds learn from it).
`key` is the part of the state the env names as what the prior hinges on (`cache_key` of a
text env; a keyed cache matches it exactly and gates the rest, `cache/core.py`).
Priors are cached as the LLM gave them. A semantic or keyed hit is served at the shared `temperature`
parameter (flatter while the audits find semantic hits wrong); the LLM's own answers and exact
hits, which are what the LLM would answer, are served as they are.
`PriorClient.propose` asks for the arguments of an open action (WebShop's search queries)
through the same actors: the cache actor's exact-match proposal store, then the pool.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np
import ray
from ray.exceptions import GetTimeoutError

from priorcache.platform.cache.actor import LookupRequest, Recovery, get_or_create_cache_actor
from priorcache.platform.cache.audit import AuditResult, HitAuditor
from priorcache.platform.cache.core import CacheParams, Guard, Hit, SemanticCache, hash_text
from priorcache.platform.cache.proposals import proposal_key
from priorcache.platform.config import PriorConfig
from priorcache.platform.embed import EMBEDDING_DIM, TextEmbedder
from priorcache.platform.llm.pool import get_or_create_pool
from priorcache.platform.logprob import FALLBACK_PRIORS, log_softmax

HIT_SOURCES = ("near", "cache")
SOURCES = (*HIT_SOURCES, "llm", "fallback")


@dataclass(frozen=True)
class PriorResult:
    """One answered prior request."""

    logp: np.ndarray
    """log p(a|s) per candidate."""
    embedding: np.ndarray
    """Unit embedding of the state text (also a policy input)."""
    source: str
    """One of SOURCES."""
    exact: bool
    """A hit on the identical state text (False for semantic hits and misses)."""
    similarity: float
    """Cosine similarity of the entry that answered (1 for exact hits, 0 for misses)."""
    latency_ms: float
    """End to end, embedding included."""
    audits: tuple[AuditResult, ...] = ()
    """KL audits of earlier hits that finished since the previous request."""


def cache_params(cfg: PriorConfig) -> CacheParams:
    """The shared cache's initial parameters from the config."""
    c = cfg.cache
    return CacheParams(mode=c.mode, capacity=c.capacity, threshold=c.threshold, refresh=c.refresh,
                       candidates=c.candidates, min_coverage=c.min_coverage, per_entry=c.per_entry,
                       kl_tolerance=c.audit_kl_tolerance, decisive_margin=c.decisive_margin)


_HELD: list[ray.actor.ActorHandle] = []
"""Handles kept for the life of this process. A named actor dies once its creator drops every
handle; without this, a second run in the same driver (tests, `priorcache eval`) could look
the actor up by name while it is being torn down, and fail with ActorDiedError."""


def connect(cfg: PriorConfig) -> tuple[ray.actor.ActorHandle, ray.actor.ActorHandle]:
    """The (cache actor, replica pool) of this config, created when missing."""
    recovery = Recovery(cfg.cache.max_restarts, cfg.cache.snapshot_path, cfg.cache.snapshot_every_s)
    cache = get_or_create_cache_actor(cfg.cache.namespace, cache_params(cfg), EMBEDDING_DIM, recovery)
    pool = get_or_create_pool(cfg.llm)
    _HELD.extend((cache, pool))
    return cache, pool


class PriorClient:
    """Answers prior requests for one process; see the module docstring."""

    def __init__(self, cfg: PriorConfig, embedder: TextEmbedder | None = None) -> None:
        self._cfg = cfg
        self.embedder = embedder or TextEmbedder(
            cfg.embedder.model_path or None, n_threads=cfg.embedder.n_threads, memo_size=cfg.embedder.memo_size
        )
        self._cache, self._pool = connect(cfg)
        info = ray.get(self._pool.info.remote())
        self._model_id, self._prompt_version = info["model_id"], info["prompt_version"]
        params, self._params_version = ray.get(self._cache.params.remote())
        self._params = params
        self._near = (
            SemanticCache(replace(params, capacity=cfg.cache.near_capacity), self.embedder.dim)
            if cfg.cache.near_capacity else None
        )
        self._synced_at = time.monotonic()
        self._auditor = HitAuditor(cfg.cache.audit_rate, cfg.cache.audit_max_inflight)

    @property
    def guard_ids(self) -> tuple[str, str]:
        """(model id, prompt version) of the priors this client receives."""
        return self._model_id, self._prompt_version

    def request(self, state_text: str, candidates: Sequence[str], key: str | None = None) -> PriorResult:
        """The prior over `candidates` in the state described by `state_text`, whose key for a
        keyed cache is `key` (None: the whole text)."""
        started = time.perf_counter()
        embedding = self.embedder.embed_one(state_text)
        text_hash = hash_text(state_text)
        key_hash = hash_text(key) if key is not None else text_hash
        candidates = tuple(candidates)
        guard = Guard.for_candidates(self._model_id, self._prompt_version, candidates)
        self._sync_params()
        request = (embedding, text_hash, guard, candidates, state_text, key_hash)
        hit, source = self._lookup(request)
        if hit is not None:
            logp = hit.logp
            if not hit.exact:
                self._auditor.maybe_audit(
                    lambda: self._pool.prior.remote(state_text, list(candidates), audit=True),
                    logp, hit.similarity, hit.entry, guard,
                )
        else:
            logp, source = self._ask_llm(state_text, candidates)
            if source == "llm":
                self._cache.insert.remote([(embedding, text_hash, guard, logp, candidates, state_text, key_hash)])
                if self._near is not None:
                    self._near.insert(embedding, text_hash, guard, logp, candidates, state_text, key_hash)
        audits = tuple(self._auditor.collect())
        self._report(audits)
        exact = hit is not None and hit.exact
        if hit is not None and not exact and self._params.temperature != 1.0:
            logp = log_softmax(logp, self._params.temperature)
        latency_ms = (time.perf_counter() - started) * 1e3
        similarity = hit.similarity if hit is not None else 0.0
        return PriorResult(logp, embedding, source, exact, similarity, latency_ms, audits)

    def propose(self, state_text: str, opening: str, n: int) -> tuple[str, ...]:
        """Up to `n` arguments for the open action starting with `opening` (e.g. `search[`) in
        this state, cached (`cache/proposals.py`); () when the LLM does not answer in time."""
        key = proposal_key(self._model_id, self._prompt_version, opening, n, state_text)
        cached = ray.get(self._cache.lookup_proposals.remote(key))
        if cached is not None:
            return cached
        answer = self._wait_for_llm(self._pool.propose.remote(state_text, opening, n))
        if answer is None:
            return ()
        proposals = tuple(answer)
        self._cache.insert_proposals.remote(key, proposals)
        return proposals

    def finish_audits(self, wait_s: float) -> tuple[AuditResult, ...]:
        """Audits still in flight, waited for up to `wait_s` (end of a run or benchmark cell)."""
        audits = tuple(self._auditor.collect(wait_s))
        self._report(audits)
        return audits

    def _lookup(self, request: LookupRequest) -> tuple[Hit | None, str]:
        if self._near is not None:
            hit = self._near.lookup(*request)
            if hit is not None:
                return hit, "near"
        hits, params, version = ray.get(self._cache.lookup.remote([request]))
        self._apply_params(params, version)
        hit = hits[0]
        if hit is None:
            return None, "llm"
        # Only exact hits are copied. A semantic or keyed hit is the answer for another text:
        # stored under this one, a later identical request would count as exact (unaudited, not
        # flattened), and a keyed cache would gate states against a text the LLM never scored.
        if self._near is not None and hit.exact:
            embedding, text_hash, guard, candidates, state_text, key_hash = request
            self._near.insert(embedding, text_hash, guard, hit.logp, candidates, state_text, key_hash,
                              threshold=hit.entry_threshold)
        return hit, "cache"

    def _report(self, audits: tuple[AuditResult, ...]) -> None:
        """Audit outcomes to the entries that served the hits (near copy and shared entry)."""
        reports = [(a.entry, a.guard, a.similarity, a.kl) for a in audits if a.guard is not None]
        if not reports:
            return
        if self._near is not None:
            for report in reports:
                self._near.record_audit(*report)
        self._cache.record_audits.remote(reports)

    def _ask_llm(self, state_text: str, candidates: Sequence[str]) -> tuple[np.ndarray, str]:
        logp = self._wait_for_llm(self._pool.prior.remote(state_text, list(candidates)))
        if logp is None:
            return FALLBACK_PRIORS[self._cfg.llm.fallback](len(candidates)), "fallback"
        return logp, "llm"

    def _wait_for_llm(self, ref: ray.ObjectRef) -> Any:
        """The pool's answer, or None (the call cancelled) after `prior.llm.timeout_s`."""
        try:
            return ray.get(ref, timeout=self._cfg.llm.timeout_s)
        except GetTimeoutError:
            ray.cancel(ref)
            return None

    def _sync_params(self) -> None:
        if time.monotonic() - self._synced_at < self._cfg.cache.near_sync_s:
            return
        params, version = ray.get(self._cache.params.remote())
        self._apply_params(params, version)

    def _apply_params(self, params: CacheParams, version: int) -> None:
        self._synced_at = time.monotonic()
        if version == self._params_version:
            return
        self._params_version = version
        self._params = params
        if self._near is not None:
            self._near.set_params(replace(params, capacity=self._cfg.cache.near_capacity))
