"""AlfworldEnv on the shipped ALFWorld games: splits, observations, expert wins, errors, seeding."""

import json
import random
import shutil
import sys
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from priorcache.envs.alfworld_env import (
    ALFWORLD_DATA,
    DATA_ENV_VAR,
    AlfworldEnv,
    AlfworldGameError,
    alfworld_data_dir,
    alfworld_games,
    keeping_argv,
    start_alfworld_game,
)

INFO_KEYS = {"won", "lost", "score", "max_score", "steps", "candidates_truncated", "feedback"}
# Task types whose expert plans exercise the tracked state: a lamp turned on, an object cooled,
# two objects placed one after the other.
EXPERT_TASKS = ("look_at_obj_in_light", "pick_cool_then_place_in_recep", "pick_two_obj_and_place")


@pytest.fixture(scope="module")
def seen_games():
    return alfworld_games(alfworld_data_dir() / "valid_seen")


@pytest.fixture(scope="module")
def env(seen_games):
    env = AlfworldEnv(seen_games)
    yield env
    env.close()


def task_type(game_file):
    return game_file.parts[-3].split("-")[0]


def expert_plan(game_file, seed=0, max_steps=60):
    """The commands of the (seeded) handcoded expert until it wins, played in its own game."""
    random.seed(seed)
    game = start_alfworld_game(game_file, expert=True)
    try:
        with keeping_argv():
            state = game.reset()
        commands = []
        while not state["won"] and len(commands) < max_steps:
            commands.append(state["extra.expert_plan"][0])
            state, _, _ = game.step(commands[-1])
    finally:
        game.close()
    assert state["won"], f"the expert did not win {game_file} within {max_steps} steps"
    return commands


def test_split_counts():
    data = alfworld_data_dir()
    assert len(alfworld_games(data / "valid_train")) == 200
    assert len(alfworld_games(data / "valid_seen")) == 140
    assert len(alfworld_games(data / "valid_seen", playable_only=False)) == 187


def test_playable_filter(seen_games, tmp_path):
    every = alfworld_games(alfworld_data_dir() / "valid_seen", playable_only=False)
    unsolvable = next(g for g in every if not json.loads(g.read_text())["solvable"])
    copies = {
        "pick_and_place_simple-Book-None-Desk-1/trial_A": seen_games[0],
        "pick_and_place_simple-Book-None-Desk-2/trial_B": unsolvable,
        "pick_and_place_simple-Book-None-Desk-3/trial_movable_C": seen_games[0],
        "pick_and_place_simple-AppleSliced-None-Desk-4/trial_D": seen_games[0],
    }
    for folder, source in copies.items():
        (tmp_path / folder).mkdir(parents=True)
        shutil.copy(source, tmp_path / folder / "game.tw-pddl")
        shutil.copy(source.with_name("traj_data.json"), tmp_path / folder)
    no_record = tmp_path / "pick_and_place_simple-Book-None-Desk-5/trial_E"
    no_record.mkdir(parents=True)
    shutil.copy(seen_games[0], no_record / "game.tw-pddl")
    playable = tmp_path / "pick_and_place_simple-Book-None-Desk-1/trial_A/game.tw-pddl"
    assert alfworld_games(tmp_path) == [playable]
    assert len(alfworld_games(tmp_path, playable_only=False)) == 5


def test_reset_observation_and_info(env, seen_games):
    obs, info = env.reset(options={"game_index": 0})
    assert env.game_file == seen_games[0]
    assert env.observation_space.contains(obs)
    assert obs["state"].startswith("Your task is to: look at alarmclock under the desklamp.\n")
    assert "You are in the middle of a room. Looking quickly around you, you see" in obs["state"]
    assert "You are carrying nothing." in obs["state"]
    assert isinstance(obs["candidates"], tuple)
    assert list(obs["candidates"]) == sorted(set(obs["candidates"]))
    assert "go to sidetable 1" in obs["candidates"] and "help" not in obs["candidates"]
    assert env.action_space.n == 64
    assert set(info) == INFO_KEYS
    assert info["steps"] == 0 and info["score"] == 0 and info["max_score"] == 1
    assert not info["won"] and not info["lost"] and info["candidates_truncated"] == 0


def test_the_cache_key_is_the_task_and_the_last_feedback(env):
    obs, _ = env.reset(options={"game_index": 0})
    task = obs["state"].split("\n")[0]
    assert task.startswith("Your task is to: ") and env.cache_key(obs) == f"{task}\n\n"
    obs, _, _, _, info = env.step(obs["candidates"].index("go to sidetable 1"))
    assert env.cache_key(obs) == f"{task}\n\n{info['feedback'].strip()}" != f"{task}\n\n"
    assert obs["state"].endswith("\n\n" + info["feedback"].strip())


@pytest.mark.parametrize("task", EXPERT_TASKS)
def test_expert_plan_wins(env, seen_games, task):
    index = next(i for i, game in enumerate(seen_games) if task_type(game) == task)
    plan = expert_plan(seen_games[index])
    obs, _ = env.reset(options={"game_index": index})
    states, rewards = [obs["state"]], []
    for command in plan:
        obs, reward, terminated, truncated, info = env.step(obs["candidates"].index(command))
        states.append(obs["state"])
        rewards.append(reward)
    assert terminated and not truncated and info["won"]
    assert rewards == [0.0] * (len(plan) - 1) + [1.0]
    assert info["score"] == info["max_score"] == 1 and info["steps"] == len(plan)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    # What the state text tracks along the plan: where the agent is, what it carries, and what
    # it changed.
    for command, state in zip(plan, states[1:]):
        if command.startswith("go to "):
            assert f"You are at the {command[6:]}." in state
        if command.startswith("take "):
            assert f"You are carrying the {command[5:].split(' from ')[0]}." in state
        if command.startswith("move "):
            obj, receptacle = command[5:].split(" to ")
            assert "You are carrying nothing." in state
            assert f"{obj} is in/on the {receptacle}." in state
        if command.startswith("use "):
            assert f"The {command[4:]} is on." in state
    if task == "pick_cool_then_place_in_recep":
        assert "is in/on the countertop 1" in states[-1] and "The cool apple 1" in states[-1]


def test_state_text_changes_with_location_and_inventory(env, seen_games):
    obs, _ = env.reset(options={"game_index": 0})
    go = env.step(obs["candidates"].index("go to sidetable 1"))[0]
    assert go["state"] != obs["state"] and "You are at the sidetable 1." in go["state"]
    assert "You arrive at sidetable 1." in go["state"]
    take = env.step(go["candidates"].index("take alarmclock 3 from sidetable 1"))[0]
    assert "You are carrying the alarmclock 3." in take["state"]
    # Same feedback as a moment ago, other state: the text must still tell them apart.
    again = env.step(take["candidates"].index("go to sidetable 2"))[0]
    again = env.step(again["candidates"].index("go to sidetable 1"))[0]
    assert again["state"] != go["state"] and "You arrive at sidetable 1." in again["state"]
    inventory = env.step(again["candidates"].index("inventory"))[0]
    assert "You are carrying: a alarmclock 3." in inventory["state"]


def test_state_text_remembers_where_the_agent_looked(env):
    """The searcher's memory: receptacles whose contents were shown, and where objects the task
    names (alarmclock, desklamp) were seen, until they are taken."""
    obs, _ = env.reset(options={"game_index": 0})
    assert "looked in/on" not in obs["state"]
    for command in ("go to sidetable 1", "go to sidetable 2", "go to drawer 1"):
        obs = env.step(obs["candidates"].index(command))[0]
    # Closed: not looked in yet. Other objects on the sidetables (a cd, a pen) are not kept.
    assert "You have looked in/on: sidetable 1, sidetable 2.\n" in obs["state"]
    assert "You saw the alarmclock 3 in/on the sidetable 1." in obs["state"]
    assert "You saw the desklamp 2 in/on the sidetable 2." in obs["state"]
    assert " cd " not in obs["state"].split("\n\n")[0]
    obs = env.step(obs["candidates"].index("open drawer 1"))[0]
    assert "You have looked in/on: drawer 1, sidetable 1, sidetable 2.\n" in obs["state"]
    for command in ("go to sidetable 1", "take alarmclock 3 from sidetable 1"):
        obs = env.step(obs["candidates"].index(command))[0]
    assert "You saw the alarmclock 3" not in obs["state"]
    assert "You are carrying the alarmclock 3." in obs["state"]


@pytest.mark.parametrize("action", [-1, 10_000, np.int64(63), 1.5])
def test_invalid_action_raises(env, action):
    env.reset(options={"game_index": 0})
    with pytest.raises(ValueError, match="action"):
        env.step(action)


def test_truncates_at_max_steps(seen_games):
    env = AlfworldEnv(seen_games[:1], max_steps=3)
    try:
        obs, _ = env.reset()
        look = obs["candidates"].index("look")
        flags = [env.step(np.int64(look))[2:4] for _ in range(3)]
        assert flags == [(False, False), (False, False), (False, True)]
        with pytest.raises(RuntimeError, match="reset"):
            env.step(look)
    finally:
        env.close()


def test_candidates_beyond_max_actions_are_dropped_and_counted(env, seen_games):
    all_candidates = env.reset(options={"game_index": 0})[0]["candidates"]
    small = AlfworldEnv(seen_games[:1], max_actions=5)
    try:
        obs, info = small.reset()
        assert small.action_space.n == 5
        assert obs["candidates"] == all_candidates[:5]
        assert info["candidates_truncated"] == len(all_candidates) - 5
    finally:
        small.close()


def test_seeded_resets_pick_the_same_games(seen_games):
    pool = seen_games[:4]
    first, second = AlfworldEnv(pool), AlfworldEnv(pool)
    try:
        runs = [
            [(env.reset(seed=seed)[0], env.game_file) for seed in (7, 7, 11)]
            for env in (first, second)
        ]
    finally:
        first.close()
        second.close()
    assert runs[0] == runs[1]
    assert runs[0][0] == runs[0][1]


def test_game_index_option(env, seen_games):
    env.reset(options={"game_index": 3})
    assert env.game_file == seen_games[3]
    with pytest.raises(ValueError, match="game_index"):
        env.reset(options={"game_index": len(seen_games)})


def test_missing_game_path_names_the_config_keys(tmp_path):
    fix = r"nope.*does not exist.*env\.alfworld\.train_split"
    with pytest.raises(AlfworldGameError, match=fix):
        AlfworldEnv([tmp_path / "nope" / "game.tw-pddl"])


def test_unplayable_game_files_are_rejected(tmp_path):
    every = alfworld_games(alfworld_data_dir() / "valid_seen", playable_only=False)
    unsolvable = next(g for g in every if not json.loads(g.read_text())["solvable"])
    with pytest.raises(AlfworldGameError, match="not marked solvable"):
        AlfworldEnv([unsolvable])
    not_json = tmp_path / "game.tw-pddl"
    not_json.write_text("(define (problem p))")
    with pytest.raises(AlfworldGameError, match="no traj_data.json"):
        AlfworldEnv([not_json])
    (tmp_path / "traj_data.json").write_text("{}")
    with pytest.raises(AlfworldGameError, match="not a readable JSON"):
        AlfworldEnv([not_json])
    with pytest.raises(AlfworldGameError, match="expected a file named 'game.tw-pddl'"):
        AlfworldEnv([unsolvable.with_name("traj_data.json")])
    with pytest.raises(AlfworldGameError, match="no game files"):
        AlfworldEnv([])


def test_missing_split_names_the_key_and_the_choices():
    fix = r"env\.alfworld\.eval_split.*valid_sen does not exist.*valid_seen, valid_train"
    with pytest.raises(AlfworldGameError, match=fix):
        alfworld_games(alfworld_data_dir() / "valid_sen", key="env.alfworld.eval_split")


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    assert alfworld_data_dir() == ALFWORLD_DATA.resolve()
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path))
    assert alfworld_data_dir() == tmp_path.resolve()
    assert alfworld_data_dir(tmp_path / "mine") == (tmp_path / "mine").resolve()


def test_sys_argv_survives_loads_and_resets(env):
    argv = list(sys.argv)
    env.reset(options={"game_index": 5})
    env.reset(options={"game_index": 5})
    assert sys.argv == argv


def test_closed_env_refuses_reset(seen_games):
    env = AlfworldEnv(seen_games[:1])
    env.close()
    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        env.reset()


def test_gymnasium_env_checker_passes(seen_games):
    # `check_env` steps with `action_space.sample()` from reset states. Slots past the current
    # candidates raise by design (policies mask them), so the env gets fewer action slots than
    # the start state of any of its games has commands, which the loop below verifies.
    slots = 4
    env = AlfworldEnv(seen_games[:3], max_actions=slots)
    try:
        for index in range(3):
            obs, info = env.reset(options={"game_index": index})
            assert len(obs["candidates"]) == slots and info["candidates_truncated"] > 0
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # gymnasium reports most findings as warnings
            warnings.filterwarnings("ignore", category=ResourceWarning)  # upstream: unclosed game files
            check_env(env, skip_render_check=True)
    finally:
        env.close()
