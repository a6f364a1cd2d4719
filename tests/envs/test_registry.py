"""Env factories by name and role: TextWorld plays one game, ALFWorld trains and evaluates on different splits."""

from dataclasses import replace

import pytest

from priorcache.envs.registry import alfworld_split, make_text_env, resolve_env
from priorcache.platform.config import AlfworldConfig, EnvConfig


def alfworld_config(max_games: int) -> EnvConfig:
    return EnvConfig(name="alfworld", alfworld=AlfworldConfig(max_games=max_games))


def test_alfworld_roles_use_disjoint_splits():
    cfg = resolve_env(alfworld_config(max_games=0))
    train, held_out = alfworld_split(cfg, "train"), alfworld_split(cfg, "eval")
    assert (len(train), len(held_out)) == (200, 140)
    assert all("valid_train" in str(g) for g in train) and all("valid_seen" in str(g) for g in held_out)


def test_a_small_alfworld_subset_covers_every_task_type():
    games = alfworld_split(resolve_env(alfworld_config(max_games=6)), "train")
    task_types = {g.relative_to(g.parents[2]).parts[0].split("-")[0] for g in games}
    assert len(games) == 6 and len(task_types) == 6


def test_alfworld_env_from_the_registry_plays_the_eval_split():
    env = make_text_env(resolve_env(alfworld_config(max_games=2)), "eval")
    try:
        obs, info = env.reset(seed=0)
        assert obs["state"].startswith("Your task is to:") and obs["candidates"]
        assert "valid_seen" in str(env.game_file)
    finally:
        env.close()


def test_textworld_resolves_a_generated_game_for_both_roles(tmp_path):
    cfg = resolve_env(replace(EnvConfig(), games_dir=str(tmp_path)))
    assert cfg.game_file.endswith(".z8")
    for role in ("train", "eval"):
        env = make_text_env(cfg, role)
        env.close()


def test_unknown_role_is_rejected():
    with pytest.raises(ValueError, match="role"):
        make_text_env(EnvConfig(), "test")


def test_history_appends_the_recent_commands_to_the_state():
    """`env.history=2` on the real BabyAI text env: the last two commands, oldest first."""
    env = make_text_env(EnvConfig(name="babyai", history=2, max_steps=10))
    obs, _ = env.reset(seed=0)
    assert "Recent commands" not in obs["state"]
    played = []
    for slot in (0, 1, 2):
        played.append(obs["candidates"][slot])
        obs, *_ = env.step(slot)
    assert obs["state"].endswith(f"\n\nRecent commands: {played[1]}; {played[2]}.")
    obs, _ = env.reset(seed=1)
    assert "Recent commands" not in obs["state"]


def test_bad_history_names_the_key():
    from priorcache.platform.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"env\.history"):
        load_config(None, ["env.history=-1"])
