"""Seeded evaluation rollouts of a policy on a feature-wrapped text environment.

A policy maps one observation of `PriorFeaturesWrapper` to an action slot. Built in: the
trained RLModule (sampling its posterior, or greedy), the LLM prior alone (sampling
p_LLM(a|s): what the prior knows before any RL), the Direct-LLM agent (argmax of the prior,
no RL), its no-repeat variant (`NoRepeatDirectLLM`: the argmax among the commands not yet
played from the same observation this episode) and the uniform random policy over the
admissible commands (the baseline every result is shown beside). Text-reading agents
(ReAct, `baselines/react.py`) follow the same `(obs, rng) -> slot` convention on the
unwrapped text env. On the continuous envs (`ContinuousPriorWrapper` observations) a policy
returns a Box action: the trained SAC module (`continuous_module_policy`: its mean action, or
a sample of its squashed Gaussian) or uniform random actions (`continuous_random_policy`).
Success is the last step's `won` (text) or `success` (Meta-World); NaN on MuJoCo locomotion,
which has none.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns

from priorcache.algorithms.prior_metrics import episode_success
from priorcache.platform.cache.kl_bound import measured_kl_per_hit
from priorcache.platform.prior_client import HIT_SOURCES
from priorcache.progress import Progress

Policy = Callable[[Any, np.random.Generator], Any]
"""(observation, rng) -> action: a slot of a text env, or a Box action of a continuous env."""


@dataclass(frozen=True)
class EvalResult:
    """Aggregate of evaluation episodes."""

    episodes: int
    success_rate: float
    """NaN where the env has no success signal (MuJoCo locomotion)."""
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


class NoRepeatDirectLLM:
    """Direct-LLM that never replays a command from an observation it has seen this episode.

    A greedy agent on a deterministic env repeats itself forever once an observation recurs
    (most lost greedy ALFWorld episodes end in such a cycle, `docs/prior.md`). This agent
    takes the prior's top command among those it has not yet played from the same
    observation (the same state embedding and candidates); when it has played them all, it
    takes the top one among the least played. Without repeats it acts exactly as
    `direct_llm_policy`. `evaluate` calls `start_episode` before each episode.
    """

    def __init__(self) -> None:
        self._played: dict[bytes, np.ndarray] = {}

    def start_episode(self) -> None:
        """Forget the previous episode's observations."""
        self._played.clear()

    def __call__(self, obs: dict[str, np.ndarray], rng: np.random.Generator) -> int:
        real = np.flatnonzero(obs["action_mask"] > 0.5)
        key = obs["state"].tobytes() + obs["actions"][real].tobytes()
        counts = self._played.setdefault(key, np.zeros(len(real), np.int64))
        fewest = np.flatnonzero(counts == counts.min())
        choice = fewest[np.argmax(obs["prior_logp"][real[fewest]])]
        counts[choice] += 1
        return int(real[choice])


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


def continuous_module_policy(module: Any, greedy: bool) -> Policy:
    """Act with a SAC module: tanh of its Gaussian's mean (`greedy`) or of a sample of it."""
    from priorcache.algorithms.sac_prior import policy_gaussian

    def act(obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        with torch.no_grad():
            inputs = module.forward_inference({Columns.OBS: torch.as_tensor(obs)[None]})[Columns.ACTION_DIST_INPUTS]
        mean, std = (t[0].double().numpy() for t in policy_gaussian(inputs))
        u = mean if greedy else mean + std * rng.standard_normal(mean.shape)
        return np.tanh(u).astype(np.float32)

    return act


def continuous_random_policy(action_space: gym.spaces.Box) -> Policy:
    """Uniform random actions over the Box (seeded by the episode's rng)."""

    def act(obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(action_space.low, action_space.high).astype(np.float32)

    return act


class PriorTally(gym.Wrapper):
    """Counts the prior requests an evaluation makes, from the `prior_*` fields of each info
    (`PriorFeaturesWrapper`): what training reads through RLlib's metrics, for agents without RL."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.requests = self.hits = self.semantic_hits = 0
        self.latencies_ms: list[float] = []
        self.audit_kls: list[float] = []
        self.audit_flips: list[bool] = []

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._record(info)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._record(info)
        return obs, reward, terminated, truncated, info

    def _record(self, info: dict[str, Any]) -> None:
        if "prior_source" not in info:
            return
        hit = info["prior_source"] in HIT_SOURCES
        self.requests += 1
        self.hits += hit
        self.semantic_hits += hit and not info["prior_exact"]
        self.latencies_ms.append(info["prior_latency_ms"])
        self.audit_kls.extend(info["prior_audits"])
        self.audit_flips.extend(info["prior_audit_flips"])

    def finish_audits(self, wait_s: float) -> None:
        """Count the audits still in flight after the last step, waited for up to `wait_s`: the
        episodes' infos only carry the audits that came back while they were played."""
        client = self.env.get_wrapper_attr("prior_client")
        if client is None:
            return
        for audit in client.finish_audits(wait_s):
            self.audit_kls.append(audit.kl)
            self.audit_flips.append(audit.flip)

    def metrics(self) -> dict[str, float]:
        """`prior_requests`, `cache_hit_rate`, `prior_latency_ms_p50`; and from the audits of
        semantic hits, `prior_kl_audit` (per hit, as in training: exact hits cost 0, NaN while no
        semantic hit was audited) and `argmax_flip_rate` (share of audits whose argmax changed)."""
        audited = len(self.audit_kls)
        semantic_kl = float(np.mean(self.audit_kls)) if audited else math.nan
        return {
            "prior_requests": float(self.requests),
            "cache_hit_rate": self.hits / self.requests if self.requests else math.nan,
            "prior_latency_ms_p50": float(np.median(self.latencies_ms)) if self.requests else math.nan,
            "prior_audits": float(audited),
            "prior_kl_audit": (measured_kl_per_hit(semantic_kl, self.semantic_hits, self.hits)
                               if self.hits else math.nan),
            "argmax_flip_rate": float(np.mean(self.audit_flips)) if audited else math.nan,
        }


def evaluate(env: gym.Env, policy: Policy, episodes: int, seed: int, label: str = "evaluation") -> EvalResult:
    """Play `episodes` episodes with seeds seed, seed+1, ...; success = last `info["won"]` or
    `info["success"]` (NaN without either).

    While it takes long (LLM-bound policies), a progress line named `label` every 30 s. A
    policy with a `start_episode()` method (one that remembers within an episode) is told
    when each episode begins.
    """
    returns, lengths, wins = [], [], []
    progress = Progress(label, episodes, "episodes")
    start_episode = getattr(policy, "start_episode", None)
    for episode in range(episodes):
        if start_episode is not None:
            start_episode()
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
        wins.append(episode_success(info))
        progress(episode + 1, f"success {np.mean(wins):.2f}")
    return EvalResult(episodes, float(np.mean(wins)), float(np.mean(returns)), float(np.mean(lengths)))
