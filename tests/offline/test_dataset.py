"""Offline datasets: behaviour policies on a real TextWorld game, and the write -> RLlib offline
input -> statistics round trip."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from priorcache.offline.behaviour import Behaviour, BehaviourError, RandomBehaviour, expert_behaviour
from priorcache.offline.dataset import (
    DatasetCard, DatasetError, episode_stats, episodes_path, load_card, read_transitions, transition_stats,
    write_dataset,
)
from priorcache.platform.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]


def tiny_env():
    """The recorder's env (PriorFeaturesWrapper, uniform prior: no LLM) on a 2-step TextWorld game."""
    from priorcache.envs.registry import env_config, make_env, resolve_env
    from priorcache.platform.config import EnvConfig, GameConfig, PriorConfig

    env_cfg = resolve_env(EnvConfig(name="textworld", game=GameConfig(2, 4, 2, 1), max_steps=30,
                                    games_dir=str(REPO / ".cache" / "games")))
    return make_env(env_config(env_cfg, PriorConfig(), use_prior=False))


def play(env, policy: Behaviour, seed: int) -> tuple[float, bool, int]:
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    policy.reset(env)
    total, steps, done = 0.0, 0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy.act(obs, env, steps, rng))
        policy.played()
        total, steps, done = total + reward, steps + 1, terminated or truncated
    return total, info["won"], steps


def test_expert_plays_the_walkthrough_and_random_wanders():
    env = tiny_env()
    expert = expert_behaviour("textworld", continuous=False)
    try:
        assert play(env, expert, 0) == (2.0, True, 2)
        assert play(env, expert, 1) == (2.0, True, 2)  # the shadow game restarts with every episode
    finally:
        expert.close()
    random_steps = [play(env, RandomBehaviour(continuous=False), seed)[2] for seed in range(3)]
    env.close()
    assert max(random_steps) > 2


def test_the_expert_of_a_domain_without_one_names_the_key_and_the_fix():
    with pytest.raises(BehaviourError, match="'env.name' is 'babyai'.*record 'random' or 'medium'"):
        expert_behaviour("babyai", continuous=False)
    with pytest.raises(BehaviourError, match="'env.name' = 'walker2d'.*record 'random' or 'medium'"):
        expert_behaviour("walker2d", continuous=True)
    with pytest.raises(ConfigError, match="'offline.quality' is 'good'"):
        load_config(REPO / "experiments" / "textworld_cql_prior.yaml", ["offline.quality=good"])


def synthetic_episodes(n: int, k: int = 4, d: int = 6):
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    from priorcache.envs.prior_features import feature_space

    rng = np.random.default_rng(0)
    space = feature_space(k, d)

    def obs():
        return {"state": rng.uniform(-1, 1, d).astype(np.float32), "actions": rng.uniform(-1, 1, (k, d)).astype(np.float32),
                "action_mask": np.array([1, 1, 1, 0], np.float32), "prior_logp": np.log([0.5, 0.3, 0.2, 1.0]).astype(np.float32)}

    episodes = []
    for i in range(n):
        episode = SingleAgentEpisode(observation_space=space, action_space=gym.spaces.Discrete(k))
        episode.add_env_reset(observation=obs(), infos={"won": False})
        for t in range(i + 2):
            last = t == i + 1
            episode.add_env_step(observation=obs(), action=int(rng.integers(3)), reward=float(t % 2),
                                 infos={"won": last and i % 2 == 0}, terminated=last and i % 2 == 0,
                                 truncated=last and i % 2 == 1)
        episodes.append(episode)
    return episodes


def card(stats) -> DatasetCard:
    from dataclasses import asdict

    return DatasetCard(name="t", quality="random", behaviour="b", env={}, prior={},
                       **asdict(stats), prior_requests=0, llm_queries=0, seed=0, seconds=0.0, command="c", date="d")


def test_round_trip_through_rllibs_offline_input_keeps_every_transition_and_statistic(ray_session, tmp_path):
    episodes = synthetic_episodes(5)
    written = episode_stats(episodes)
    folder = write_dataset(tmp_path / "ds", episodes, card(written))
    rows = read_transitions(folder)
    assert transition_stats(rows) == written
    assert written.episodes == 5 and written.steps == 2 + 3 + 4 + 5 + 6 and written.success_rate == pytest.approx(0.6)
    first = episodes[0]
    mine = [row for row in rows if row["eps_id"] == first.id_]
    assert [row["t"] for row in mine] == [0, 1] and [row["actions"] for row in mine] == list(first.get_actions())
    np.testing.assert_array_equal(mine[0]["obs"]["state"], first.get_observations(0)["state"])
    np.testing.assert_array_equal(mine[1]["new_obs"]["prior_logp"], first.get_observations(2)["prior_logp"])
    assert load_card(folder).steps == written.steps
    assert (folder / "CARD.md").read_text().startswith("# Offline dataset: t, random")


def test_an_incomplete_dataset_names_the_config_key_and_the_command(tmp_path):
    (tmp_path / "ds" / "episodes").mkdir(parents=True)
    with pytest.raises(DatasetError, match="offline.dataset.*priorcache offline dataset"):
        episodes_path(tmp_path / "ds")


def continuous_episodes(n: int, raw: int = 3, k: int = 2, d: int = 2):
    """Episodes of a Box env whose observation carries k prior log-weights (ContinuousPriorWrapper's layout)."""
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    from priorcache.envs.continuous_prior import prior_obs_space

    rng = np.random.default_rng(1)
    space = prior_obs_space(gym.spaces.Box(-np.inf, np.inf, (raw,), np.float32), k)

    def obs():
        return np.concatenate([rng.normal(size=raw), np.log([0.7, 0.3])]).astype(np.float32)

    episodes = []
    for i in range(n):
        episode = SingleAgentEpisode(observation_space=space, action_space=gym.spaces.Box(-1, 1, (d,), np.float32))
        episode.add_env_reset(observation=obs(), infos={"won": False})
        for t in range(i + 3):
            episode.add_env_step(observation=obs(), action=rng.uniform(-1, 1, d).astype(np.float32),
                                 reward=float(rng.normal()), infos={"won": False}, truncated=t == i + 2)
        episodes.append(episode)
    return episodes


def test_continuous_round_trip_keeps_box_actions_and_the_prior_columns(ray_session, tmp_path):
    from priorcache.offline.replay import TransitionTable

    episodes = continuous_episodes(4)
    written = episode_stats(episodes)
    folder = write_dataset(tmp_path / "ds", episodes, card(written))
    rows = read_transitions(folder)
    read = transition_stats(rows)
    assert (read.episodes, read.steps, read.success_rate) == (4, 3 + 4 + 5 + 6, 0.0)
    assert read.return_mean == pytest.approx(written.return_mean, abs=1e-6)
    first = [row for row in rows if row["eps_id"] == episodes[0].id_]
    np.testing.assert_array_equal(np.asarray(first[1]["actions"], np.float32), episodes[0].get_actions(1))
    np.testing.assert_array_equal(first[2]["new_obs"], episodes[0].get_observations(3))
    table = TransitionTable(rows)
    batch = table.sample(5, np.random.default_rng(0)).policy_batches["default_policy"]
    assert batch["obs"].shape == (5, 5) and batch["obs"].dtype == np.float32
    assert batch["actions"].shape == (5, 2) and batch["actions"].dtype == np.float32
    np.testing.assert_allclose(np.exp(batch["obs"][:, -2:]).sum(-1), 1.0, rtol=1e-5)


def test_halfcheetah_gait_runs_forward_where_random_actions_do_not():
    from priorcache.envs.continuous_env import make_continuous_env
    from priorcache.platform.config import EnvConfig

    env = make_continuous_env(EnvConfig(name="halfcheetah", max_steps=100))

    def ret(policy: Behaviour) -> float:
        rng, total = np.random.default_rng(0), 0.0
        obs, _ = env.reset(seed=0)
        for t in range(100):
            obs, reward, *_ = env.step(policy.act(obs, env, t, rng))
            total += reward
        return total

    random_return, expert_return = ret(RandomBehaviour(continuous=True)), ret(expert_behaviour("halfcheetah", True))
    env.close()
    assert random_return < 0 < 150 < expert_return
