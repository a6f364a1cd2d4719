"""The continuous prior wrapper: LLM log-weights over the primitives appended to the observation."""

import numpy as np
import pytest

from priorcache.envs.continuous_env import make_continuous_env
from priorcache.envs.continuous_prior import ContinuousPriorWrapper, goal_line
from priorcache.envs.motion_primitives import primitives
from priorcache.platform.config import EnvConfig
from priorcache.platform.prior_client import PriorResult


class RecordingClient:
    """Answers every request with fixed log-probs and records the state texts it was asked."""

    def __init__(self, logp: np.ndarray) -> None:
        self.logp, self.asked = logp, []

    def request(self, state_text, candidates):
        self.asked.append((state_text, tuple(candidates)))
        return PriorResult(self.logp, np.zeros(384, np.float32), "near", True, 1.0, 0.1)


def cheetah() -> tuple:
    env = make_continuous_env(EnvConfig(name="halfcheetah", max_steps=5))
    return env, primitives("halfcheetah")


def test_observation_is_raw_obs_then_the_priors_log_weights():
    env, prims = cheetah()
    logp = np.log(np.full(len(prims), 1.0 / len(prims)))
    logp[0] = np.log(0.5)
    client = RecordingClient(logp)
    wrapped = ContinuousPriorWrapper(env, prims, client, goal_line("halfcheetah"))
    obs, info = wrapped.reset(seed=0)
    assert wrapped.observation_space.contains(obs)
    assert obs.shape == (17 + len(prims),)
    np.testing.assert_allclose(obs[-len(prims):], logp.astype(np.float32))
    assert info["prior_source"] == "near" and info["prior_latency_ms"] == 0.1
    text, candidates = client.asked[0]
    assert text == f"Goal: run forward as fast as possible.\n{info['state_text']}"
    assert candidates == tuple(p.name for p in prims) == wrapped.primitive_names
    obs, _, _, _, info = wrapped.step(wrapped.action_space.sample())
    assert len(client.asked) == 2 and "prior_audits" in info


def test_without_a_client_the_weights_are_uniform_and_no_prior_info_is_added():
    env, prims = cheetah()
    obs, info = ContinuousPriorWrapper(env, prims, None).reset(seed=0)
    np.testing.assert_allclose(obs[-len(prims):], -np.log(len(prims)), rtol=1e-6)
    assert "prior_source" not in info


def test_goal_lines_name_the_task():
    assert goal_line("metaworld", "push-v3") == "Goal: push the puck to the goal."
    assert goal_line("metaworld", "drawer-close-v3") == "Goal: drawer close."


def test_needs_the_state_text_of_the_continuous_env():
    import gymnasium as gym

    env = gym.make("Pendulum-v1")
    with pytest.raises(KeyError, match="state_text"):
        ContinuousPriorWrapper(env, primitives("halfcheetah"), RecordingClient(np.zeros(8))).reset(seed=0)
