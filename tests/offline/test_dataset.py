"""Offline datasets: behaviour policies on a real TextWorld game, and the write -> RLlib offline
input -> statistics round trip."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from priorcache.offline.behaviour import BehaviourPolicy
from priorcache.offline.dataset import (
    DatasetCard, DatasetError, episode_stats, episodes_path, load_card, read_transitions, transition_stats,
    write_dataset,
)

REPO = Path(__file__).resolve().parents[2]


def tiny_game() -> Path:
    from priorcache.envs.textworld_games import GameSpec, ensure_game

    return ensure_game(GameSpec(2, 4, 2, 1), REPO / ".cache" / "games")


def play(policy: BehaviourPolicy, seed: int) -> tuple[float, bool, int]:
    from priorcache.envs.textworld_env import TextWorldEnv

    env = TextWorldEnv(tiny_game(), max_steps=30)
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    policy.reset(env.game_file)
    total, steps, done = 0.0, 0, False
    while not done:
        action = policy.act(obs["candidates"], rng)
        command = obs["candidates"][action]
        obs, reward, terminated, truncated, info = env.step(action)
        policy.played(command)
        total, steps, done = total + reward, steps + 1, terminated or truncated
    policy.close()
    env.close()
    return total, info["won"], steps


def test_expert_plays_the_walkthrough_and_medium_still_wins_after_random_detours():
    assert play(BehaviourPolicy.of("expert", 0.5), 0) == (2.0, True, 2)
    # The planner re-plans after every random command, so medium wins, only later.
    results = [play(BehaviourPolicy.of("medium", 0.5), seed) for seed in range(5)]
    assert all(won for _, won, _ in results)
    assert max(steps for _, _, steps in results) > 2


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

    return DatasetCard(name="t", quality="random", behaviour="b", epsilon=1.0, env={}, prior={},
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
