"""Motion primitive libraries: shapes and bounds, actuator order, and that names say what the actions do."""

import re

import gymnasium as gym
import numpy as np
import pytest

from priorcache.envs.continuous_env import GYM_IDS, make_continuous_env
from priorcache.envs.describers import DOMAINS, UnknownDomainError
from priorcache.envs.motion_primitives import ACTUATORS, Primitive, primitives
from priorcache.platform.config import EnvConfig
from priorcache.platform.llm.prompts import load_prompt


@pytest.mark.parametrize("domain", DOMAINS)
def test_library_shapes_and_bounds(domain):
    library = primitives(domain)
    dim = len(ACTUATORS[domain])
    assert 6 <= len(library) <= 12
    assert len({p.name for p in library}) == len(library)
    for p in library:
        assert isinstance(p, Primitive) and p.name == p.name.strip() and p.name
        assert p.mean.shape == p.std.shape == (dim,)
        assert np.all(np.abs(p.mean) <= 1.0) and np.all(p.std > 0)
        assert not p.mean.flags.writeable  # shared, cached arrays


@pytest.mark.parametrize("domain", ["halfcheetah", "walker2d", "ant"])
def test_actuator_order_is_the_models(domain):
    env = gym.make(GYM_IDS[domain])
    model = env.unwrapped.model
    joints = tuple(model.joint(model.actuator_trnid[i, 0]).name for i in range(model.nu))
    env.close()
    assert joints == ACTUATORS[domain]


@pytest.mark.parametrize("domain", DOMAINS)
def test_prompt_examples_name_primitives_of_the_domain(domain):
    """The worked lines of the domain's prompt template end in primitive names the prior scores."""
    prefix = load_prompt(f"{domain}-v1").prefix
    shown = re.findall(r"Next motion: (.+)", prefix)
    assert shown and set(shown) <= {p.name for p in primitives(domain)}


def hold(domain, name, steps, seed=0):
    """(env, first obs, last obs) after holding the primitive's mean for `steps` steps."""
    env = make_continuous_env(EnvConfig(name=domain, max_steps=500))
    action = {p.name: p for p in primitives(domain)}[name].mean.astype(np.float32)
    first, _ = env.reset(seed=seed)
    obs = first
    for _ in range(steps):
        obs, *_ = env.step(action)
    return env, first, obs


def test_ant_turns_the_way_it_says():
    def yaw_after(name):
        env, _, _ = hold("ant", name, 20)
        w, x, y, z = env.unwrapped.data.qpos[3:7]
        env.close()
        return np.degrees(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))

    assert yaw_after("turn left") > 10 and yaw_after("turn right") < -10  # counter-clockwise is left


def test_cheetah_legs_swing_the_way_they_say():
    # Joint velocities after one step (obs 11..16: bthigh, bshin, bfoot, fthigh, fshin, ffoot).
    for name, joint, sign in [("swing back leg backward", 11, 1), ("swing back leg forward", 11, -1),
                              ("swing front leg backward", 14, 1), ("swing front leg forward", 14, -1)]:
        env, _, obs = hold("halfcheetah", name, 1)
        env.close()
        assert np.sign(obs[joint]) == sign, name


def test_metaworld_moves_go_where_they_say():
    pytest.importorskip("metaworld", reason="the metaworld extra is not installed")
    env = make_continuous_env(EnvConfig(name="metaworld", max_steps=500))
    library = {p.name: p.mean.astype(np.float32) for p in primitives("metaworld")}
    for name, axis, sign in [("move gripper forward", 1, 1), ("move gripper left", 0, -1), ("move gripper up", 2, 1)]:
        start, _ = env.reset(seed=0)
        for _ in range(10):
            obs, *_ = env.step(library[name])
        assert (obs[axis] - start[axis]) * sign > 0.03, name  # more than 3 cm in 10 steps
    env.reset(seed=0)
    for _ in range(10):
        obs, *_ = env.step(library["close gripper"])
    env.close()
    assert obs[3] < 0.8  # fingers closing


def test_unknown_domain_is_rejected():
    with pytest.raises(UnknownDomainError):
        primitives("hopper")
