"""The no-repeat Direct-LLM agent on hand-made observations, `evaluate`'s episode hook, and
episode success (undefined on MuJoCo locomotion, evaluated on the real HalfCheetah).

Its real path (the LLM prior on a TextWorld game, through `priorcache eval`) is in
tests/test_eval_suite.py::test_variant_and_sampled_rows_run_on_the_real_prior.
"""

import math

import gymnasium as gym
import numpy as np
import pytest

from priorcache.algorithms.prior_metrics import episode_success
from priorcache.envs.continuous_env import make_continuous_env
from priorcache.evaluation import (
    NoRepeatDirectLLM, PriorTally, continuous_random_policy, direct_llm_policy, evaluate,
)
from priorcache.platform.cache.audit import AuditResult
from priorcache.platform.config import EnvConfig


def observation(state: float, logp: list[float], slots: int = 5) -> dict[str, np.ndarray]:
    k = len(logp)
    obs = {
        "state": np.full(3, state, np.float32),
        "actions": np.zeros((slots, 3), np.float32),
        "action_mask": np.zeros(slots, np.float32),
        "prior_logp": np.zeros(slots, np.float32),
    }
    obs["actions"][:k] = np.arange(k)[:, None]
    obs["action_mask"][:k] = 1.0
    obs["prior_logp"][:k] = logp
    return obs


def test_no_repeat_acts_greedily_until_an_observation_recurs_then_tries_the_next_best():
    agent, rng = NoRepeatDirectLLM(), np.random.default_rng(0)
    a, b = observation(0.1, [-0.2, -3.0, -1.0]), observation(0.5, [-2.0, -0.1])
    assert agent(a, rng) == direct_llm_policy(a, rng) == 0
    assert agent(b, rng) == 1
    assert [agent(a, rng) for _ in range(4)] == [2, 1, 0, 2]  # then the least played, best first
    assert agent(b, rng) == 0


def test_no_repeat_tells_observations_apart_by_their_candidates_and_forgets_at_episode_start():
    agent, rng = NoRepeatDirectLLM(), np.random.default_rng(0)
    three = observation(0.1, [-0.2, -3.0, -1.0])
    assert agent(three, rng) == 0
    assert agent(observation(0.1, [-0.2, -3.0]), rng) == 0  # same state, other candidates
    agent.start_episode()
    assert agent(three, rng) == 0


class Corridor(gym.Env):
    """Two observations forever: a greedy agent plays slot 0 at every step."""

    observation_space = gym.spaces.Dict({})
    action_space = gym.spaces.Discrete(5)

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return observation(0.0, [-0.1, -1.0]), {}

    def step(self, action):
        self.t += 1
        return observation(float(self.t % 2), [-0.1, -1.0]), 0.0, False, self.t == 4, {"won": action == 1}


def test_evaluate_starts_each_episode_afresh():
    played: list[int] = []
    agent = NoRepeatDirectLLM()

    def recording(obs, rng):
        played.append(agent(obs, rng))
        return played[-1]

    recording.start_episode = agent.start_episode
    result = evaluate(Corridor(), recording, episodes=2, seed=0)
    assert played == [0, 0, 1, 1] * 2  # observations 0, 1, 0, 1: the repeats take slot 1
    assert result.success_rate == 1.0


@pytest.mark.parametrize(("info", "expected"), [({"won": True}, 1.0), ({"won": False, "score": 0}, 0.0),
                                                ({"success": True}, 1.0), ({"success": False}, 0.0)])
def test_episode_success_reads_won_or_success(info, expected):
    assert episode_success(info) == expected


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_locomotion_has_no_success_rate_only_returns():
    env = make_continuous_env(EnvConfig(name="halfcheetah", max_steps=5))
    try:
        result = evaluate(env, continuous_random_policy(env.action_space), episodes=2, seed=0)
    finally:
        env.close()
    assert math.isnan(episode_success({"state_text": "..."}))
    assert math.isnan(result.success_rate) and np.isfinite(result.episode_return_mean)
    assert result.episode_len_mean == 5


class Answered(gym.Env):
    """Reports a prior source per observation: an LLM call, an exact hit, an audited semantic hit."""

    observation_space = gym.spaces.Discrete(1)
    action_space = gym.spaces.Discrete(1)
    INFOS = [
        {"prior_source": "llm", "prior_exact": False, "prior_latency_ms": 900.0, "prior_audits": [], "prior_audit_flips": []},
        {"prior_source": "near", "prior_exact": True, "prior_latency_ms": 0.1, "prior_audits": [], "prior_audit_flips": []},
        {"prior_source": "cache", "prior_exact": False, "prior_latency_ms": 2.0, "prior_audits": [0.4],
         "prior_audit_flips": [True]},
    ]

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return 0, dict(self.INFOS[0])

    def step(self, action):
        self.t += 1
        return 0, 0.0, self.t == 2, False, {**self.INFOS[self.t], "won": True}


def test_prior_tally_counts_requests_hits_and_audits_as_training_does():
    env = PriorTally(Answered())
    evaluate(env, lambda obs, rng: 0, episodes=2, seed=0)
    metrics = env.metrics()
    assert metrics["prior_requests"] == 6 and metrics["cache_hit_rate"] == 4 / 6
    assert metrics["prior_latency_ms_p50"] == 2.0 and metrics["prior_audits"] == 2
    assert metrics["prior_kl_audit"] == 0.5 * 0.4  # half the hits were semantic; exact hits cost 0
    assert metrics["argmax_flip_rate"] == 1.0


class LateAudits:
    """A prior client with one audit still in flight when the episodes end."""

    def __init__(self) -> None:
        self.waited_s: list[float] = []

    def finish_audits(self, wait_s: float) -> tuple[AuditResult, ...]:
        self.waited_s.append(wait_s)
        return (AuditResult(kl=1.0, similarity=0.97, flip=False),)


def test_prior_tally_counts_audits_that_finish_after_the_last_step():
    base = Answered()
    base.prior_client = LateAudits()
    env = PriorTally(base)
    evaluate(env, lambda obs, rng: 0, episodes=2, seed=0)
    env.finish_audits(wait_s=5.0)
    metrics = env.metrics()
    assert base.prior_client.waited_s == [5.0]
    assert metrics["prior_audits"] == 3 and metrics["argmax_flip_rate"] == 2 / 3
    assert metrics["prior_kl_audit"] == 0.5 * (0.4 + 0.4 + 1.0) / 3
