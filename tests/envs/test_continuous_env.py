"""Continuous envs: gymnasium's env checker, the uniform interface, seeding, config errors, registry."""

import importlib.util

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from priorcache.envs.continuous_env import ContinuousEnvError, make_continuous_env
from priorcache.envs.registry import make_continuous_rllib_env, make_text_env, resolve_env
from priorcache.platform.config import ConfigError, EnvConfig, MetaWorldConfig, PriorConfig, load_config

HAS_METAWORLD = importlib.util.find_spec("metaworld") is not None
needs_metaworld = pytest.mark.skipif(not HAS_METAWORLD, reason="the metaworld extra is not installed "
                                     "(uv sync --extra metaworld)")
METAWORLD_TASKS = ("reach-v3", "push-v3", "pick-place-v3", "door-open-v3")
ACTION_DIMS = {"halfcheetah": 6, "walker2d": 6, "ant": 8, "metaworld": 4}


def config(name, task="reach-v3", max_steps=20):
    return EnvConfig(name=name, max_steps=max_steps, metaworld=MetaWorldConfig(task=task))


def check_uniform_interface(env, name):
    # The checker warns about unbounded Box observations (MuJoCo's own spaces are unbounded too).
    check_env(env.unwrapped, skip_render_check=True)
    check_env(env, skip_render_check=True)
    assert env.observation_space.dtype == np.float32
    assert env.action_space.shape == (ACTION_DIMS[name],)
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    obs, info = env.reset(seed=3)
    assert obs.dtype == np.float32 and isinstance(info["state_text"], str)
    steps, truncated = 0, False
    while not truncated:
        obs, reward, terminated, truncated, info = env.step(np.zeros(env.action_space.shape, np.float32))
        steps += 1
        assert isinstance(info["state_text"], str) and not terminated
    assert steps == 20  # env.max_steps truncates
    return info


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", ["halfcheetah", "walker2d", "ant"])
def test_mujoco_envs_pass_the_checker(name):
    env = make_continuous_env(config(name))
    try:
        check_uniform_interface(env, name)
    finally:
        env.close()


@needs_metaworld
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("task", METAWORLD_TASKS)
def test_metaworld_tasks_pass_the_checker(task):
    env = make_continuous_env(config("metaworld", task))
    try:
        info = check_uniform_interface(env, "metaworld")
        assert info["success"] is False
        # The reset seed picks the placement: same seed, same objects and goal; another seed, others.
        first, _ = env.reset(seed=1)
        again, _ = env.reset(seed=1)
        other, _ = env.reset(seed=2)
        np.testing.assert_array_equal(first, again)
        assert not np.allclose(first[36:39], other[36:39]) or not np.allclose(first[4:7], other[4:7])
    finally:
        env.close()


@needs_metaworld
@pytest.mark.filterwarnings("ignore:Constant")  # the expert's gains exceed 1; actions are clipped
def test_metaworld_reports_success_of_the_scripted_expert():
    from metaworld.policies import SawyerReachV3Policy

    env = make_continuous_env(config("metaworld", "reach-v3", max_steps=150))
    expert = SawyerReachV3Policy()
    obs, _ = env.reset(seed=0)
    successes = []
    for _ in range(150):
        obs, _, _, truncated, info = env.step(np.clip(expert.get_action(obs), -1, 1).astype(np.float32))
        successes.append(info["success"])
        if truncated:
            break
    env.close()
    assert any(successes) and info["state_text"] == "Gripper open. Target at the gripper."


@pytest.mark.parametrize("name", ["halfcheetah", *(["metaworld"] if HAS_METAWORLD else [])])
def test_rgb_frames_for_videos(name, monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "egl")
    env = make_continuous_env(config(name), render_mode="rgb_array")
    try:
        env.reset(seed=0)
        try:
            frame = env.render()
        except Exception as err:  # no EGL device on this machine: nothing here to test
            pytest.skip(f"offscreen rendering unavailable: {err}")
        assert frame.shape == (480, 480, 3) and frame.dtype == np.uint8 and frame.std() > 0
    finally:
        env.close()


METAWORLD_ERRORS = [
    (["env.name=metaworld", "algorithm.name=sac_prior", "env.metaworld.task=pick-place"], "env.metaworld.task"),
    (["env.name=metaworld", "algorithm.name=sac_prior", "env.max_steps=1000"], "env.max_steps"),
]


@pytest.mark.parametrize("overrides, key", [
    (["env.name=hopper"], "env.name"),
    (["env.name=halfcheetah", "env.describer=neural"], "env.describer"),
    *(METAWORLD_ERRORS if HAS_METAWORLD else []),
])
def test_bad_continuous_config_names_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as err:
        load_config(None, overrides)
    if key == "env.metaworld.task":
        assert "pick-place-v3" in str(err.value)  # the close match is suggested


def test_continuous_names_load_and_resolve():
    cfg = load_config(None, ["env.name=halfcheetah", "algorithm.name=sac_prior", "env.max_steps=1000",
                             "env.describer=learned"])
    assert resolve_env(cfg.env) == cfg.env
    with pytest.raises(ValueError, match="make_continuous_env"):
        make_text_env(cfg.env)
    with pytest.raises(ContinuousEnvError, match="textworld"):
        make_continuous_env(EnvConfig())


def test_rllib_env_creator_reads_the_env_config():
    """Walker2d's 17 observations, then the prior's log-weights over its primitives (uniform: no prior asked)."""
    from priorcache.envs.motion_primitives import primitives
    from priorcache.envs.registry import env_config

    env = make_continuous_rllib_env(env_config(config("walker2d"), PriorConfig(), use_prior=False))
    k = len(primitives("walker2d"))
    try:
        obs, info = env.reset(seed=0)
        assert obs.shape == (17 + k,) and info["state_text"].startswith("Walker")
        np.testing.assert_allclose(obs[17:], np.full(k, -np.log(k)), rtol=1e-5)
    finally:
        env.close()


@needs_metaworld
def test_building_an_unknown_metaworld_task_names_the_key():
    with pytest.raises(ConfigError, match=r"env\.metaworld\.task"):
        make_continuous_env(config("metaworld", "open-door-v3"))
