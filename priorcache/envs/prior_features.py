"""Turns a text environment into the array observations a prior-aware RLModule reads.

This wrapper is where the prior is fetched (through `PriorClient`: near-cache, shared cache,
LLM pool), once per observation, on the env runner. Putting the prior into the observation
means it is stored in the episodes, so the learner's KL(pi || prior) term reads it from
the train batch instead of asking the cache again. An env with a `cache_key(observation)`
method names the part of its state a keyed cache matches (`prior.cache.mode=keyed`).

Observation (a `Dict` space, K = max action slots, D = embedding size):
- `state`       (D,)    unit embedding of the state text,
- `actions`     (K, D)  unit embeddings of the candidate commands (zeros in empty slots),
- `action_mask` (K,)    1 for a real candidate,
- `prior_logp`  (K,)    log p_LLM(a|s) over the real candidates (0 in empty slots).
`info` gains `prior_source`, `prior_exact` (exact-text hit), `prior_similarity` (of the entry
that answered), `prior_latency_ms`, and the KLs and similarities of audited semantic hits
finished meanwhile (`prior_audits`, `prior_audit_similarities`, and `prior_audit_flips`: whether
the cached prior's argmax differed from the fresh one); the metrics callback reads them.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from priorcache.platform.embed import TextEmbedder
from priorcache.platform.logprob import uniform_logp
from priorcache.platform.prior_client import PriorClient, PriorResult


def prior_info(result: PriorResult) -> dict[str, Any]:
    """The `info` fields of one prior request that the metrics callback reads (module docstring)."""
    return {
        "prior_source": result.source,
        "prior_exact": result.exact,
        "prior_similarity": result.similarity,
        "prior_latency_ms": result.latency_ms,
        "prior_audits": [a.kl for a in result.audits],
        "prior_audit_similarities": [a.similarity for a in result.audits],
        "prior_audit_flips": [a.flip for a in result.audits],
    }


def feature_space(max_actions: int, dim: int) -> gym.spaces.Dict:
    """The observation space of `PriorFeaturesWrapper`.

    `prior_logp` is bounded below by the lowest finite float32, not -inf: the prior is a
    log-softmax of finite scores, and a -inf would make the KL(pi || prior) term infinite, so
    the space rejects it.
    """
    return gym.spaces.Dict({
        "state": gym.spaces.Box(-1.0, 1.0, (dim,), np.float32),
        "actions": gym.spaces.Box(-1.0, 1.0, (max_actions, dim), np.float32),
        "action_mask": gym.spaces.Box(0.0, 1.0, (max_actions,), np.float32),
        "prior_logp": gym.spaces.Box(np.finfo(np.float32).min, 0.0, (max_actions,), np.float32),
    })


class PriorFeaturesWrapper(gym.ObservationWrapper):
    """Text observation `{"state", "candidates"}` -> arrays + LLM prior; see module docstring.

    With `client=None` the prior is uniform and no LLM is asked (the no-prior baseline).
    """

    def __init__(self, env: gym.Env, embedder: TextEmbedder, client: PriorClient | None) -> None:
        super().__init__(env)
        self._embedder = embedder
        self._client = client
        self._cache_key = getattr(env.unwrapped, "cache_key", None)
        self._max_actions = int(env.action_space.n)
        self.observation_space = feature_space(self._max_actions, embedder.dim)
        self._last_prior: dict[str, Any] = {}
        self._candidates: tuple[str, ...] = ()

    @property
    def candidates(self) -> tuple[str, ...]:
        """The commands of the last observation, in slot order (what action i plays)."""
        return self._candidates

    @property
    def prior_client(self) -> PriorClient | None:
        """The client that fetches this env's priors (None for the no-prior baseline)."""
        return self._client

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        features = self.observation(obs)
        return features, {**info, **self._last_prior}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        features = self.observation(obs)
        return features, reward, terminated, truncated, {**info, **self._last_prior}

    def observation(self, observation: dict[str, Any]) -> dict[str, np.ndarray]:
        state_text: str = observation["state"]
        candidates: tuple[str, ...] = tuple(observation["candidates"])
        self._candidates = candidates
        k = len(candidates)
        features = {
            "state": np.zeros(self._embedder.dim, np.float32),
            "actions": np.zeros((self._max_actions, self._embedder.dim), np.float32),
            "action_mask": np.zeros(self._max_actions, np.float32),
            "prior_logp": np.zeros(self._max_actions, np.float32),
        }
        if k:
            features["actions"][:k] = self._embedder.embed(candidates)
            features["action_mask"][:k] = 1.0
        if self._client is not None and k:
            key = self._cache_key(observation) if self._cache_key is not None else None
            result = self._client.request(state_text, candidates, key)
            features["state"] = result.embedding
            features["prior_logp"][:k] = result.logp
            self._last_prior = prior_info(result)
        else:
            features["state"] = self._embedder.embed_one(state_text)
            if k:
                features["prior_logp"][:k] = uniform_logp(k)
            self._last_prior = {}
        return features
