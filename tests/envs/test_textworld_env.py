"""TextWorldEnv: observations, dense rewards, walkthrough win, errors, truncation, determinism,
game lists, gymnasium's env checker."""

import json
import shutil
import warnings

import numpy as np
import pytest
import textworld
from gymnasium.utils.env_checker import check_env
from jericho import UnsupportedGameWarning

from priorcache.envs.textworld_env import GameFileError, TextWorldEnv
from priorcache.envs.textworld_games import GameSpec, ensure_game
from priorcache.envs.textworld_suites import suite_games
from priorcache.platform.config import SuiteConfig

SPEC = GameSpec(world_size=2, nb_objects=4, quest_length=2, seed=1)
LONG_SPEC = GameSpec(world_size=3, nb_objects=6, quest_length=4, seed=1)  # 2 moves, a container
# TextWorld asks Jericho for its own command list, then replaces it; Jericho warns about that on
# every turn. TextWorld silences the warning at import, but pytest resets warning filters.
pytestmark = pytest.mark.filterwarnings("ignore::jericho.UnsupportedGameWarning")
INFO_KEYS = {"won", "lost", "score", "max_score", "steps", "candidates_truncated", "feedback"}


@pytest.fixture(scope="session")
def game_file(tmp_path_factory):
    return ensure_game(SPEC, tmp_path_factory.mktemp("games"))


@pytest.fixture(scope="session")
def long_game_file(tmp_path_factory):
    return ensure_game(LONG_SPEC, tmp_path_factory.mktemp("long_games"))


def walkthrough_of(game_file):
    """The game's own shortest winning command sequence, from TextWorld's quest tracking."""
    game = textworld.start(str(game_file), request_infos=textworld.EnvInfos(policy_commands=True))
    try:
        return list(game.reset()["policy_commands"])
    finally:
        game.close()


@pytest.fixture(scope="session")
def walkthrough(game_file):
    return walkthrough_of(game_file)


@pytest.fixture
def env(game_file):
    env = TextWorldEnv(game_file, max_steps=50)
    yield env
    env.close()


def play(env, commands):
    """Play commands by name; return the observations, rewards and infos after each step."""
    obs, info = env.reset()
    trace = [(obs, 0.0, info)]
    for command in commands:
        obs, reward, terminated, truncated, info = env.step(obs["candidates"].index(command))
        trace.append((obs, reward, info))
    return trace


def test_reset_observation_and_info(env):
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert isinstance(obs["candidates"], tuple)
    assert list(obs["candidates"]) == sorted(set(obs["candidates"]))
    assert env.action_space.n == 32 and len(obs["candidates"]) <= 32
    assert set(info) == INFO_KEYS
    assert info["steps"] == 0 and info["score"] == 0 and not info["won"] and not info["lost"]
    assert info["max_score"] == SPEC.quest_length


@pytest.mark.parametrize("which", ["game_file", "long_game_file"])
def test_walkthrough_wins_with_dense_rewards(request, which):
    game_file = request.getfixturevalue(which)
    walkthrough = walkthrough_of(game_file)
    env = TextWorldEnv(game_file)
    try:
        trace = play(env, walkthrough)
    finally:
        env.close()
    rewards = [reward for _, reward, _ in trace[1:]]
    final = trace[-1][2]
    assert final["won"] and final["steps"] == len(walkthrough)
    assert sum(rewards) == final["max_score"] == final["score"]
    assert all(reward > 0 for reward in rewards)  # every walkthrough step pays


def test_episode_terminates_on_win_and_refuses_more_steps(env, walkthrough):
    obs, _ = env.reset()
    for command in walkthrough:
        obs, _, terminated, truncated, _ = env.step(obs["candidates"].index(command))
    assert terminated and not truncated
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_state_text_ignores_feedback_of_stateless_commands(env):
    obs, info = env.reset()
    examine = next(c for c in obs["candidates"] if c.startswith("examine"))
    for command in ("look", "inventory", examine):
        after, reward, _, _, after_info = env.step(obs["candidates"].index(command))
        assert after == obs and reward == 0.0
        assert after_info["feedback"] != info["feedback"]
        info = after_info


def test_same_spec_plays_identically(game_file, walkthrough, tmp_path):
    other = ensure_game(SPEC, tmp_path)
    detour = ["look", walkthrough[0], "inventory", *walkthrough[1:]]
    envs = [TextWorldEnv(game_file), TextWorldEnv(other)]
    try:
        first, second = (play(e, detour) for e in envs)
    finally:
        for e in envs:
            e.close()
    assert first == second


def test_reset_seeds_np_random_and_restarts_the_game(env, walkthrough):
    first, _ = env.reset(seed=3)
    draw = env.np_random.integers(1 << 30)
    env.step(first["candidates"].index(walkthrough[0]))
    again, info = env.reset(seed=3)
    assert again == first and info["score"] == 0 and info["steps"] == 0
    assert env.np_random.integers(1 << 30) == draw


@pytest.mark.parametrize("action", [-1, 10_000, np.int64(10_000), 1.5])
def test_invalid_action_raises(env, action):
    env.reset()
    with pytest.raises(ValueError, match="action"):
        env.step(action)


def test_numpy_action_is_accepted(env):
    obs, _ = env.reset()
    _, _, _, _, info = env.step(np.int64(obs["candidates"].index("look")))
    assert info["steps"] == 1


def test_truncates_at_max_steps(game_file):
    env = TextWorldEnv(game_file, max_steps=3)
    try:
        obs, _ = env.reset()
        look = obs["candidates"].index("look")
        flags = [env.step(look)[2:4] for _ in range(3)]
        assert flags == [(False, False), (False, False), (False, True)]
        with pytest.raises(RuntimeError, match="reset"):
            env.step(look)
    finally:
        env.close()


def test_candidates_beyond_max_actions_are_dropped_and_counted(game_file):
    env = TextWorldEnv(game_file, max_actions=2)
    try:
        obs, info = env.reset()
        full = TextWorldEnv(game_file)
        all_candidates = full.reset()[0]["candidates"]
        full.close()
        assert env.action_space.n == 2
        assert obs["candidates"] == all_candidates[:2]
        assert info["candidates_truncated"] == len(all_candidates) - 2
    finally:
        env.close()


def test_missing_game_file(tmp_path):
    fix = r"env\.game_file.*does not exist.*leave 'env\.game_file' empty"
    with pytest.raises(GameFileError, match=fix):
        TextWorldEnv(tmp_path / "nope.z8")


@pytest.mark.parametrize(
    "corruption", ["text", "truncated", "no_metadata", "bad_metadata", "foreign_metadata", "glulx"]
)
def test_corrupt_game_file(game_file, tmp_path, corruption):
    bad = tmp_path / ("bad.ulx" if corruption == "glulx" else "bad.z8")
    shutil.copy(game_file, bad)
    shutil.copy(game_file.with_suffix(".json"), bad.with_suffix(".json"))
    if corruption == "text":
        bad.write_text("this is not a game\n")
    elif corruption == "truncated":
        bad.write_bytes(game_file.read_bytes()[:4096])
    elif corruption == "no_metadata":
        bad.with_suffix(".json").unlink()
    elif corruption == "bad_metadata":
        bad.with_suffix(".json").write_text("{}")
    elif corruption == "foreign_metadata":
        metadata = json.loads(bad.with_suffix(".json").read_text())
        metadata["objective"] = "Find the golden teapot in the attic."
        bad.with_suffix(".json").write_text(json.dumps(metadata))
    # Without the up-front checks, Frotz would exit() this whole test process on `text`/`truncated`.
    with pytest.raises(GameFileError, match=r"env\.game_file"):
        TextWorldEnv(bad)


def test_closed_env_refuses_reset(game_file):
    env = TextWorldEnv(game_file)
    env.close()
    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        env.reset()


# `check_env` steps with `action_space.sample()` from reset states. Slots past the current
# candidates raise by design (policies mask them), so the checks give the env fewer action slots
# than the start state of any of its games has commands, which `assert_slots_full` verifies.
CHECK_SLOTS = 4


def assert_slots_full(env):
    for index in range(len(env.game_files)):
        obs, info = env.reset(options={"game_index": index})
        assert len(obs["candidates"]) == CHECK_SLOTS and info["candidates_truncated"] > 0


@pytest.fixture(scope="session")
def suite_files(tmp_path_factory):
    cfg = SuiteConfig(family="simple", level=1, train_games=2, eval_games=1, seed=1)
    return suite_games(cfg, tmp_path_factory.mktemp("suite_games"), "train")


@pytest.mark.parametrize("which", ["game_file", "suite_files"])
def test_gymnasium_env_checker_passes(request, which):
    env = TextWorldEnv(request.getfixturevalue(which), max_actions=CHECK_SLOTS)
    try:
        assert_slots_full(env)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # gymnasium reports most findings as warnings
            warnings.filterwarnings("ignore", category=UnsupportedGameWarning)
            check_env(env, skip_render_check=True)
    finally:
        env.close()


def test_plays_a_list_of_games(game_file, long_game_file):
    env = TextWorldEnv([game_file, long_game_file])
    try:
        _, info = env.reset(options={"game_index": 1})
        assert env.game_file == long_game_file and info["max_score"] == LONG_SPEC.quest_length
        _, info = env.reset(options={"game_index": 0})
        assert env.game_file == game_file and info["max_score"] == SPEC.quest_length
    finally:
        env.close()


def test_empty_game_list():
    with pytest.raises(GameFileError, match=r"env\.suite\.train_games"):
        TextWorldEnv([])


def test_corrupt_game_in_a_list_names_the_suite(game_file, tmp_path):
    bad = tmp_path / "bad.z8"
    bad.write_bytes(game_file.read_bytes()[:4096])
    shutil.copy(game_file.with_suffix(".json"), bad.with_suffix(".json"))
    with pytest.raises(GameFileError, match=r"bad\.z8.*env\.suite.*env\.games_dir"):
        TextWorldEnv([game_file, bad])
