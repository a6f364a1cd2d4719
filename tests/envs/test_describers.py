"""Rule-based describers: known hand-built states give the expected discretised texts."""

import numpy as np
import pytest

from priorcache.envs.describers import (
    DOMAINS, UnknownDomainError, bucket, describe, direction_words, distance_word, rule_describer,
)


def cheetah(z=-0.13, pitch=0.0, vx=0.0):
    """HalfCheetah-v5 obs: root z (relative), pitch, six joint angles, velocities."""
    obs = np.zeros(17, dtype=np.float32)
    obs[0], obs[1], obs[8] = z, pitch, vx
    return obs


def test_halfcheetah_states():
    # z -0.13 is where the cheetah settles: both feet touch the floor.
    assert describe("halfcheetah", cheetah()) == "Cheetah body level, standing still, both feet on the ground."
    assert describe("halfcheetah", cheetah(z=0.3, vx=3.0)) == "Cheetah body level, running forward, both feet in the air."
    assert describe("halfcheetah", cheetah(vx=-1.0)).startswith("Cheetah body level, moving backward")
    assert describe("halfcheetah", cheetah(pitch=0.5)).startswith("Cheetah nose down, standing still")
    assert describe("halfcheetah", cheetah(pitch=-0.5, vx=6.0)).startswith("Cheetah nose up, running fast forward")
    assert describe("halfcheetah", cheetah(z=0.0, pitch=3.0)).startswith("Cheetah flipped over")


def test_halfcheetah_nose_down_puts_the_front_foot_down_first():
    # Pitching nose down (+) lowers the front foot and lifts the back one (forward kinematics).
    assert describe("halfcheetah", cheetah(z=-0.05, pitch=0.3)).endswith("front foot down, back foot up.")
    assert describe("halfcheetah", cheetah(z=-0.05, pitch=-0.3)).endswith("back foot down, front foot up.")


def walker(z=1.21, pitch=0.0, vx=0.0, right_thigh=0.0):
    obs = np.zeros(17, dtype=np.float32)
    obs[0], obs[1], obs[2], obs[8] = z, pitch, right_thigh, vx
    return obs


def test_walker2d_states():
    assert describe("walker2d", walker()) == (
        "Walker upright, torso straight, standing still, both feet on the ground, legs together.")
    assert describe("walker2d", walker(pitch=0.5, vx=2.0)).startswith("Walker upright, leaning forward, walking forward")
    assert describe("walker2d", walker(z=0.7, pitch=-0.5)).startswith("Walker fallen low, leaning back")
    # A positive thigh angle swings the right leg forward (joint axis -y).
    assert describe("walker2d", walker(right_thigh=0.6)).endswith("right leg ahead.")
    assert describe("walker2d", walker(z=1.5)).endswith("both feet in the air, legs together.")


def ant(z=0.42, quat=(1.0, 0.0, 0.0, 0.0), vx=0.0, vy=0.0):
    """Ant-v5 obs: torso z, quaternion, eight joint angles, velocities, contact forces.

    The stance has every ankle bent 0.7 rad towards the floor: at z 0.42 each foot's lowest
    point is 2.4 cm below the floor plane (down), at z 0.9 it is 46 cm above (up).
    """
    obs = np.zeros(105, dtype=np.float32)
    obs[0], obs[1:5] = z, quat
    obs[5:13] = (0.0, 0.7, 0.0, -0.7, 0.0, -0.7, 0.0, 0.7)  # hip_1, ankle_1, ..., hip_4, ankle_4
    obs[13], obs[14] = vx, vy
    return obs


def test_ant_states():
    assert describe("ant", ant()) == "Ant upright, standing still, all four feet on the ground."
    assert describe("ant", ant(vx=1.0)) == "Ant upright, moving forward, all four feet on the ground."
    assert describe("ant", ant(vx=0.2, vy=-1.0)).startswith("Ant upright, moving right")
    assert describe("ant", ant(z=0.9)).endswith("no feet on the ground.")
    assert describe("ant", ant(quat=(0.0, 1.0, 0.0, 0.0))).startswith("Ant upside down")


def metaworld_obs(hand, opening, obj, goal):
    obs = np.zeros(39, dtype=np.float32)
    obs[0:3], obs[3], obs[4:7], obs[36:39] = hand, opening, obj, goal
    return obs


def test_metaworld_reach_describes_the_goal_from_the_gripper():
    reach = rule_describer("metaworld", "reach-v3")
    # Only the dominant direction is named: forward 25 cm beats up 15 cm.
    obs = metaworld_obs((0.0, 0.6, 0.2), 1.0, (0.0, 0.7, 0.02), (0.0, 0.85, 0.35))
    assert reach(obs) == "Gripper open. Target far, forward from the gripper."
    obs = metaworld_obs((0.0, 0.6, 0.2), 1.0, (0.0, 0.7, 0.02), (0.0, 0.65, 0.28))
    assert reach(obs) == "Gripper open. Target near, up from the gripper."
    obs = metaworld_obs((0.0, 0.85, 0.29), 1.0, (0.0, 0.7, 0.02), (0.0, 0.85, 0.3))
    assert reach(obs) == "Gripper open. Target at the gripper."


def test_metaworld_pick_place_tracks_grasp_and_goal():
    pick = rule_describer("metaworld", "pick-place-v3")
    approach = metaworld_obs((0.0, 0.6, 0.2), 1.0, (0.1, 0.6, 0.02), (0.1, 0.8, 0.2))
    assert pick(approach) == ("Gripper open. Puck far, down from the gripper. Puck on the table. "
                              "Goal far, forward from the puck.")
    held = metaworld_obs((0.1, 0.7, 0.12), 0.45, (0.1, 0.7, 0.1), (0.1, 0.75, 0.1))
    assert pick(held) == "Gripper closed. Puck at the gripper. Puck held in the gripper. Goal near, forward from the puck."


def test_metaworld_door_names_the_handle():
    door = rule_describer("metaworld", "door-open-v3")
    obs = metaworld_obs((0.0, 0.6, 0.2), 0.3, (0.25, 0.68, 0.15), (-0.25, 0.40, 0.15))
    assert door(obs) == ("Gripper closed. Door handle far, right from the gripper. "
                         "Goal far, left from the door handle.")


def test_helpers():
    assert bucket(0.0, (-1.0, 1.0), ("low", "mid", "high")) == "mid"
    assert bucket(1.0, (-1.0, 1.0), ("low", "mid", "high")) == "high"
    assert direction_words(np.array([0.1, -0.06, 0.01])) == "right"
    assert direction_words(np.array([0.0, -0.06, -0.07])) == "down"
    assert direction_words(np.array([0.005, 0.0, 0.0])) == "here"
    assert [distance_word(d) for d in (0.01, 0.1, 0.5)] == ["at", "near", "far"]


@pytest.mark.parametrize("domain", ["halfcheetah", "walker2d", "ant"])
def test_descriptions_repeat_and_stay_short_along_a_rollout(domain):
    """Discretised texts: few distinct ones over 300 random steps, each under 40 words."""
    from priorcache.envs.continuous_env import make_continuous_env
    from priorcache.platform.config import EnvConfig

    env = make_continuous_env(EnvConfig(name=domain, max_steps=1000))
    env.action_space.seed(0)
    _, info = env.reset(seed=0)
    texts = [info["state_text"]]
    for _ in range(300):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        texts.append(info["state_text"])
        if terminated or truncated:
            _, info = env.reset()
    env.close()
    assert max(len(t.split()) for t in texts) < 40
    assert len(set(texts)) <= len(texts) // 5  # each text recurs five times on average or more


def test_unknown_domain_lists_the_known_ones():
    with pytest.raises(UnknownDomainError, match="halfcheetah"):
        describe("hopper", np.zeros(11))
    assert set(DOMAINS) == {"halfcheetah", "walker2d", "ant", "metaworld"}
