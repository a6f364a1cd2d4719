"""The no-repeat Direct-LLM agent on hand-made observations, and `evaluate`'s episode hook.

Its real path (the LLM prior on a TextWorld game, through `priorcache eval`) is in
tests/test_eval_suite.py::test_variant_and_sampled_rows_run_on_the_real_prior.
"""

import gymnasium as gym
import numpy as np

from priorcache.evaluation import NoRepeatDirectLLM, direct_llm_policy, evaluate


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
