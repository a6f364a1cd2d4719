"""Puts the LLM's motion-primitive prior into a continuous environment's observations.

The continuous analogue of `prior_features.py`. Each step, the wrapper takes the state text
the env wrote into `info["state_text"]` (the domain's describer, `envs/continuous_env.py`),
puts the task's goal line above it (`goal_line`: the describer says where the body is, not what
it is for), asks `PriorClient.request(state_text, primitive names)` for log p_LLM(primitive | state) through the same path as the text
domains (near-cache, shared semantic cache keyed by the embedding of the state text, LLM
pool), and appends those K log-weights to the observation:

    observation = [raw observation (float32), prior_logw (K,)]        a flat Box

Keeping the prior in the observation stores it in the replay buffer with each transition,
so SAC-Prior's learner reads the prior of s and s' from the batch instead of asking the
cache again (`algorithms/sac_prior.py`); its RLModule drops these columns before the
networks. `info` gains the same prior fields as the text wrapper (`prior_source`,
`prior_exact`, `prior_similarity`, `prior_latency_ms`, audits), which
`PriorMetricsCallback` counts into DESIGN.md's metrics.

With `client=None` no LLM is asked and `prior_logw` is uniform (evaluation of a trained
policy, which ignores it). This module never builds the base env or the primitives: the
env registry passes them in (`make_continuous_rllib_env`).
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np

from priorcache.envs.prior_features import prior_info
from priorcache.platform.logprob import uniform_logp
from priorcache.platform.mixture_prior import PrimitiveLike
from priorcache.platform.prior_client import PriorClient

GOALS: dict[str, str] = {
    "halfcheetah": "run forward as fast as possible.",
    "walker2d": "walk forward fast without falling.",
    "ant": "walk forward fast without falling.",
}
"""The goal line of each locomotion domain (the reward of its Gymnasium v5 env, in words)."""
METAWORLD_GOALS: dict[str, str] = {
    "reach": "move the gripper to the goal.",
    "push": "push the puck to the goal.",
    "pick-place": "pick up the puck and place it at the goal.",
    "door-open": "open the door.",
}
"""Meta-World goal lines by task family (the task name without `-v3`); others: the name in words."""


def goal_line(domain: str, task: str = "") -> str:
    """"Goal: ..." for a domain (Meta-World: for its task, e.g. push-v3)."""
    if domain != "metaworld":
        return f"Goal: {GOALS[domain]}"
    family = task.rsplit("-v", 1)[0]
    return f"Goal: {METAWORLD_GOALS.get(family, family.replace('-', ' ') + '.')}"


def prior_obs_space(raw: gym.spaces.Box, n_primitives: int) -> gym.spaces.Box:
    """The raw Box with K prior columns appended (bounded by the lowest finite float32 and 0)."""
    low = np.concatenate([np.asarray(raw.low, np.float32).ravel(), np.full(n_primitives, np.finfo(np.float32).min)])
    high = np.concatenate([np.asarray(raw.high, np.float32).ravel(), np.zeros(n_primitives, np.float32)])
    return gym.spaces.Box(low, high, dtype=np.float32)


class ContinuousPriorWrapper(gym.Wrapper):
    """Raw Box observation -> [observation, prior log-weights over the primitives]; see module docstring."""

    def __init__(self, env: gym.Env, primitives: Sequence[PrimitiveLike], client: PriorClient | None,
                 goal: str = "") -> None:
        super().__init__(env)
        if not isinstance(env.observation_space, gym.spaces.Box):
            raise TypeError(f"ContinuousPriorWrapper needs a Box observation space, got {env.observation_space}")
        self._names = tuple(p.name for p in primitives)
        self._goal = goal
        self._client = client
        self.observation_space = prior_obs_space(env.observation_space, len(self._names))

    @property
    def primitive_names(self) -> tuple[str, ...]:
        """The candidates the LLM scores, in the order of the `prior_logw` columns."""
        return self._names

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        features, prior_info = self._with_prior(obs, info)
        return features, {**info, **prior_info}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        features, prior_info = self._with_prior(obs, info)
        return features, reward, terminated, truncated, {**info, **prior_info}

    def _with_prior(self, obs: np.ndarray, info: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        raw = np.asarray(obs, np.float32).ravel()
        if self._client is None:
            return np.concatenate([raw, uniform_logp(len(self._names)).astype(np.float32)]), {}
        if "state_text" not in info:
            raise KeyError("ContinuousPriorWrapper needs info['state_text'] (make_continuous_env's StateText)")
        text = f"{self._goal}\n{info['state_text']}" if self._goal else info["state_text"]
        result = self._client.request(text, self._names)
        info = prior_info(result)
        logw = np.maximum(np.asarray(result.logp, np.float32), np.finfo(np.float32).min)
        return np.concatenate([raw, logw]), info
