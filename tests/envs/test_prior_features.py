"""PriorFeaturesWrapper: array observations in the declared space, gymnasium's env checker."""

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from jericho import UnsupportedGameWarning

from priorcache.envs.prior_features import PriorFeaturesWrapper
from priorcache.envs.textworld_env import TextWorldEnv
from priorcache.envs.textworld_games import GameSpec, ensure_game
from priorcache.platform.embed import TextEmbedder
from priorcache.platform.logprob import uniform_logp
from priorcache.platform.prior_client import PriorResult

SPEC = GameSpec(world_size=2, nb_objects=4, quest_length=2, seed=1)
# As in test_textworld_env.py: `check_env` samples any action slot from a reset state, and slots
# past the candidates raise by design, so the env gets fewer slots than its start state has
# commands.
CHECK_SLOTS = 4
pytestmark = pytest.mark.filterwarnings("ignore::jericho.UnsupportedGameWarning")


@pytest.fixture(scope="module")
def embedder():
    return TextEmbedder(n_threads=1)


@pytest.fixture(scope="module")
def game_file(tmp_path_factory):
    return ensure_game(SPEC, tmp_path_factory.mktemp("games"))


@pytest.fixture
def wrapped(game_file, embedder):
    env = PriorFeaturesWrapper(TextWorldEnv(game_file, max_actions=CHECK_SLOTS), embedder, None)
    yield env
    env.close()


def test_gymnasium_env_checker_passes(wrapped):
    obs, info = wrapped.reset()
    assert obs["action_mask"].sum() == CHECK_SLOTS and info["candidates_truncated"] > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gymnasium reports most findings as warnings
        warnings.filterwarnings("ignore", category=UnsupportedGameWarning)
        # The checker warns that it was given a wrapper; the wrapper is what RLlib runs.
        warnings.filterwarnings("ignore", message=".*different from the unwrapped version")
        check_env(wrapped, skip_render_check=True)


def test_observations_stay_in_the_declared_space(wrapped):
    obs, _ = wrapped.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert wrapped.observation_space.contains(obs)
        k = int(obs["action_mask"].sum())
        np.testing.assert_allclose(obs["prior_logp"][:k], -np.log(k), rtol=1e-6)
        obs, _, terminated, truncated, _ = wrapped.step(int(rng.integers(k)))
        if terminated or truncated:
            obs, _ = wrapped.reset()
    # A -inf prior log-probability would make the KL term infinite: the space rejects it.
    obs["prior_logp"][0] = -np.inf
    assert not wrapped.observation_space.contains(obs)


class RecordingClient:
    """Stands in for `PriorClient` (unit test): records the state texts and keys it is asked
    with. The real keyed path is tested in tests/platform/test_prior_client.py."""

    def __init__(self, embedder):
        self.embedder, self.asked = embedder, []

    def request(self, state_text, candidates, key=None):
        self.asked.append((state_text, key))
        return PriorResult(uniform_logp(len(candidates)), self.embedder.embed_one(state_text), "llm", False, 0.0, 1.0)


class KeyedTextWorldEnv(TextWorldEnv):
    @staticmethod
    def cache_key(observation):
        return observation["state"][:10]


@pytest.mark.parametrize("env_type", [TextWorldEnv, KeyedTextWorldEnv])
def test_the_env_names_the_key_a_keyed_cache_matches(game_file, embedder, env_type):
    client = RecordingClient(embedder)
    env = PriorFeaturesWrapper(env_type(game_file, max_actions=CHECK_SLOTS), embedder, client)
    env.reset(seed=0)
    env.step(0)
    env.close()
    expected = [(text, text[:10] if env_type is KeyedTextWorldEnv else None) for text, _ in client.asked]
    assert len(client.asked) == 2 and client.asked == expected
