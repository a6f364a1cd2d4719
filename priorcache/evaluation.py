"""Seeded evaluation rollouts of a policy on a feature-wrapped text environment.

A policy maps one observation of `PriorFeaturesWrapper` to an action slot. Built in: the
trained RLModule (sampling its posterior, or greedy), the LLM prior alone (sampling
p_LLM(a|s): what the prior knows before any RL), the Direct-LLM agent (argmax of the prior,
no RL) and the uniform random policy over the admissible commands (the baseline every
result is shown beside). Text-reading agents (ReAct, `baselines/react.py`) follow the same
`(obs, rng) -> slot` convention on the unwrapped text env.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns

from priorcache.progress import Progress

Policy = Callable[[dict[str, np.ndarray], np.random.Generator], int]


@dataclass(frozen=True)
class EvalResult:
    """Aggregate of evaluation episodes."""

    episodes: int
    success_rate: float
    episode_return_mean: float
    episode_len_mean: float

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """Fields as a flat dict, names prefixed (e.g. `random_`)."""
        return {f"{prefix}{k}": float(v) for k, v in asdict(self).items()}


def random_policy(obs: dict[str, np.ndarray], rng: np.random.Generator) -> int:
    """Uniform over the admissible commands."""
    return int(rng.choice(np.flatnonzero(obs["action_mask"] > 0.5)))


def prior_policy(obs: dict[str, np.ndarray], rng: np.random.Generator) -> int:
    """Sample the LLM prior over the admissible commands (no learning)."""
    real = np.flatnonzero(obs["action_mask"] > 0.5)
    probs = np.exp(obs["prior_logp"][real].astype(np.float64))
    return int(rng.choice(real, p=probs / probs.sum()))


def direct_llm_policy(obs: dict[str, np.ndarray], rng: np.random.Generator) -> int:
    """Act by the LLM's top-scored admissible command (argmax of the prior, no learning)."""
    real = np.flatnonzero(obs["action_mask"] > 0.5)
    return int(real[np.argmax(obs["prior_logp"][real])])


def module_policy(module: Any, greedy: bool) -> Policy:
    """Act with an RLModule's inference pass: sample its action distribution or take argmax."""

    def act(obs: dict[str, np.ndarray], rng: np.random.Generator) -> int:
        batch = {Columns.OBS: {k: torch.as_tensor(v)[None] for k, v in obs.items()}}
        with torch.no_grad():
            logits = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS][0].double().numpy()
        if greedy:
            return int(np.argmax(logits))
        probs = np.exp(logits - logits.max())
        return int(rng.choice(len(probs), p=probs / probs.sum()))

    return act


def evaluate(env: gym.Env, policy: Policy, episodes: int, seed: int, label: str = "evaluation") -> EvalResult:
    """Play `episodes` episodes with seeds seed, seed+1, ...; success = `info["won"]`.

    While it takes long (LLM-bound policies), a progress line named `label` every 30 s.
    """
    returns, lengths, wins = [], [], []
    progress = Progress(label, episodes, "episodes")
    for episode in range(episodes):
        rng = np.random.default_rng(seed + episode)
        obs, info = env.reset(seed=seed + episode)
        total, steps, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy(obs, rng))
            total += float(reward)
            steps += 1
            done = terminated or truncated
        returns.append(total)
        lengths.append(steps)
        wins.append(bool(info.get("won", False)))
        progress(episode + 1, f"success {np.mean(wins):.2f}")
    return EvalResult(episodes, float(np.mean(wins)), float(np.mean(returns)), float(np.mean(lengths)))
