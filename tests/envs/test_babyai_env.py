"""BabyAITextEnv: gymnasium's checker, described views, scripted wins, seeding, truncation, errors."""

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from minigrid.core.actions import Actions
from minigrid.utils.baby_ai_bot import BabyAIBot

from priorcache.envs.babyai_env import BabyAILevelError, BabyAITextEnv, check_level

INFO_KEYS = {"won", "lost", "score", "max_score", "steps", "candidates_truncated", "feedback"}
COMMANDS = ("drop", "go forward", "pick up", "toggle", "turn left", "turn right")
COMMAND_OF = {
    Actions.left: "turn left", Actions.right: "turn right", Actions.forward: "go forward",
    Actions.pickup: "pick up", Actions.drop: "drop", Actions.toggle: "toggle",
}
MAZE = "BabyAI-GoToObjMaze-v0"  # 3x3 rooms joined by closed doors


@pytest.fixture
def env():
    env = BabyAITextEnv("BabyAI-GoToObj-v0")
    yield env
    env.close()


def command(env, obs, name):
    """Step by command name; return what `step` returns."""
    return env.step(obs["candidates"].index(name))


def play_bot(env, seed):
    """Let minigrid's BabyAI bot (it reads the grid) play through the text env's commands."""
    obs, info = env.reset(seed=seed)
    bot = BabyAIBot(env.minigrid)
    trace, action, done = [(obs, 0.0, info)], None, False
    while not done:
        action = bot.replan(action)
        obs, reward, terminated, truncated, info = env.step(obs["candidates"].index(COMMAND_OF[action]))
        trace.append((obs, reward, info))
        done = terminated or truncated
    return trace


def test_passes_gymnasium_env_checker():
    # One action slot per command: the checker steps a randomly sampled action, and an index past
    # the candidates is a caller's bug here (policies mask those slots), as in every text env.
    env = BabyAITextEnv(max_actions=len(COMMANDS))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)
    env.close()


def test_reset_observation_and_info(env):
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert obs["candidates"] == COMMANDS and env.action_space.n == 32
    assert set(info) == INFO_KEYS
    assert info == {"won": False, "lost": False, "score": 0.0, "max_score": 1.0, "steps": 0,
                    "candidates_truncated": 0, "feedback": ""}


def test_state_describes_the_egocentric_view(env):
    # Seed 3: agent top-left facing east, a red box 2 columns on and 3 rows down.
    #   WGWGWGWGWGWGWGWG
    #   WG>>          WG
    #   WG            WG
    #   WG            WG
    #   WG    BR      WG
    obs, _ = env.reset(seed=3)
    assert obs["state"] == (
        "Goal: go to the red box.\n"
        "You see a wall 1 step left.\n"
        "You see a red box 3 steps right and 2 steps forward.\n"
        "You see a wall 6 steps forward.\n"
        "In front of you is empty floor.\n"
        "You carry nothing."
    )
    obs, _, _, _, info = command(env, obs, "turn right")  # now facing south: the box is ahead-left
    assert info["feedback"] == "You turned right."
    assert "You see a red box 2 steps left and 3 steps forward." in obs["state"].splitlines()


def test_same_seed_same_text_and_turning_changes_it(env):
    first, _ = env.reset(seed=5)
    again, _ = env.reset(seed=5)
    assert again == first
    assert len({env.reset(seed=seed)[0]["state"] for seed in range(10)}) > 5
    env.reset(seed=5)
    turned, reward, terminated, truncated, info = command(env, first, "turn left")
    assert turned["state"] != first["state"] and turned["candidates"] == first["candidates"]
    assert (reward, terminated, truncated, info["steps"]) == (0.0, False, False, 1)
    assert info["feedback"] == "You turned left." and info["feedback"] not in turned["state"]


def test_unseeded_resets_continue_the_last_seed(env):
    def episodes():
        env.reset(seed=7)
        return [env.reset()[0] for _ in range(3)]

    first = episodes()
    assert episodes() == first
    assert len({obs["state"] for obs in first}) > 1


@pytest.mark.parametrize(
    "level, max_steps",
    [("BabyAI-GoToObj-v0", 64), ("BabyAI-PickupLoc-v0", 64), (MAZE, 576)],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scripted_bot_wins_through_the_commands(level, max_steps, seed):
    env = BabyAITextEnv(level, max_steps=max_steps)
    try:
        trace = play_bot(env, seed)
    finally:
        env.close()
    rewards = [reward for _, reward, _ in trace[1:]]
    final_obs, final_info = trace[-1][0], trace[-1][2]
    assert final_info["won"] and not final_info["lost"]
    assert final_info["steps"] == len(rewards) < max_steps
    assert 0 < rewards[-1] == final_info["score"] <= final_info["max_score"] and sum(rewards[:-1]) == 0
    for obs, _, info in trace:
        lines = obs["state"].splitlines()
        assert env.observation_space.contains(obs) and set(info) == INFO_KEYS
        assert len(lines) == len(set(lines))
        assert sum(" a wall " in line for line in lines) <= 3  # nearest wall per direction only
    if "PickupLoc" in level:
        assert final_info["feedback"].startswith("You picked up the ")
        assert final_obs["state"].splitlines()[-1] != "You carry nothing."
    else:  # "go to the red ball" / "go to a key": the agent faces such an object
        front = next(line for line in final_obs["state"].splitlines() if line.startswith("In front"))
        target = final_obs["state"].splitlines()[0].removeprefix("Goal: go to ").rstrip(".")
        assert front.rstrip(".").endswith(target.split(" ", 1)[1])


def test_maze_shows_doors_and_reports_opening_them():
    env = BabyAITextEnv(MAZE, max_steps=576)
    try:
        trace = play_bot(env, 0)
    finally:
        env.close()
    states = "\n".join(obs["state"] for obs, _, _ in trace)
    feedback = {info["feedback"] for _, _, info in trace}
    assert "closed" in states and " door " in states and "You see an open " in states
    assert any(f.startswith("You opened the ") and f.endswith(" door.") for f in feedback)


def test_feedback_of_actions_that_do_nothing(env):
    obs, _ = env.reset(seed=3)  # facing east, empty floor ahead, carrying nothing
    assert command(env, obs, "drop")[4]["feedback"] == "You carry nothing to drop."
    assert command(env, obs, "pick up")[4]["feedback"] == "There is nothing in front of you to pick up."
    assert command(env, obs, "toggle")[4]["feedback"] == "There is nothing in front of you to toggle."
    command(env, obs, "turn left")  # facing the north wall
    info = command(env, obs, "go forward")[4]
    assert info["feedback"] == "You could not move forward: a wall is in the way."
    assert info["steps"] == 5


def test_truncates_at_max_steps():
    env = BabyAITextEnv(max_steps=3)
    try:
        obs, _ = env.reset(seed=0)
        flags = [command(env, obs, "turn left")[2:4] for _ in range(3)]
        assert flags == [(False, False), (False, False), (False, True)]
        with pytest.raises(RuntimeError, match="reset"):
            command(env, obs, "turn left")
    finally:
        env.close()


def test_commands_beyond_max_actions_are_dropped_and_counted():
    env = BabyAITextEnv(max_actions=4)
    try:
        obs, info = env.reset(seed=0)
        assert env.action_space.n == 4
        assert obs["candidates"] == COMMANDS[:4] and info["candidates_truncated"] == 2
    finally:
        env.close()


@pytest.mark.parametrize("action", [-1, 6, np.int64(31), 1.5])
def test_invalid_action_raises(env, action):
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)


def test_numpy_action_is_accepted(env):
    obs, _ = env.reset(seed=0)
    assert env.step(np.int64(obs["candidates"].index("turn left")))[4]["steps"] == 1


def test_step_before_reset_raises(env):
    with pytest.raises(RuntimeError, match=r"reset\(\) first"):
        env.step(0)


def test_unknown_level_names_the_config_key_and_close_matches():
    with pytest.raises(BabyAILevelError, match=r"env\.babyai\.level.*did you mean BabyAI-GoToObj-v0"):
        BabyAITextEnv("BabyAI-GoToObject-v0")
    with pytest.raises(BabyAILevelError, match=r"env\.babyai\.level.*'BabyAI-\*'"):
        check_level("CartPole-v1")  # registered, but not a BabyAI level
    check_level("BabyAI-PickupLoc-v0")


@pytest.mark.parametrize("key", ["max_steps", "max_actions"])
def test_non_positive_limits_name_the_config_key(key):
    with pytest.raises(ValueError, match=rf"env\.{key}"):
        BabyAITextEnv(**{key: 0})


def test_close_is_idempotent_and_final():
    env = BabyAITextEnv()
    env.reset(seed=0)
    env.close()
    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        env.reset()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
