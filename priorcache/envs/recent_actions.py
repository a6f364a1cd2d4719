"""A window of recent commands appended to a text env's state (config key `env.history`).

The state text is what the prior's prompt shows, what the cache keys on and what the policy
embeds, so one wrapper gives all three the same context: "Recent commands: go to desk 1;
take pen 1 from desk 1." after the env's own state. The trade-off is the cache's: with k
recent commands two visits of the same place only match when the last k commands match too,
so exact repeats get rarer as k grows (docs/prior.md measures it).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym


class RecentActions(gym.Wrapper):
    """Append the last `window` commands (oldest first) to `obs["state"]`; nothing at reset."""

    def __init__(self, env: gym.Env, window: int) -> None:
        super().__init__(env)
        if window < 1:
            raise ValueError(f"config key 'env.history' is {window}; give the number of recent commands (>= 1)")
        self._recent: deque[str] = deque(maxlen=window)
        self._candidates: tuple[str, ...] = ()

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self._recent.clear()
        return self._observe(obs), info

    def step(self, action):
        self._recent.append(self._candidates[int(action)])
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._observe(obs), reward, terminated, truncated, info

    def _observe(self, obs: dict[str, Any]) -> dict[str, Any]:
        self._candidates = tuple(obs["candidates"])
        if not self._recent:
            return obs
        return {**obs, "state": f"{obs['state']}\n\nRecent commands: {'; '.join(self._recent)}."}
