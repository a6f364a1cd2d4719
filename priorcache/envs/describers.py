"""Rule-based state → text describers for the continuous domains (the prior's state text).

The LLM prior of a continuous env scores motion primitives given a *description* of the
state; the description is also the cache key. Descriptions are therefore discretised (a few
buckets per quantity, fixed wording, under 40 words) so that nearby states give the same
text and the cache hits. The words for directions and legs are those of the primitive names
in `motion_primitives.py`, so the LLM can match "the puck is ahead" to "move gripper forward".

Observation indices read (Gymnasium MuJoCo v5 with the default
`exclude_current_positions_from_observation=True`, i.e. qpos without the root x (and y);
Meta-World v3 `SawyerXYZEnv._get_obs`):

- HalfCheetah-v5 (17): 0 root z, 1 torso pitch (rad, + = nose down), 2-7 joint angles
  (bthigh, bshin, bfoot, fthigh, fshin, ffoot), 8 forward velocity x (m/s).
- Walker2d-v5 (17): 0 torso height z, 1 torso pitch (+ = leaning forward), 2-7 joint angles
  (right thigh, leg, foot, left thigh, leg, foot), 8 forward velocity x.
- Ant-v5 (105): 0 torso z, 1-4 torso quaternion (w, x, y, z), 5-12 hip/ankle angles,
  13-14 torso velocity x, y (world frame).
- Meta-World v3 (39): 0-2 gripper (end effector) position, 3 finger opening (0 closed .. 1
  open), 4-6 first object position (puck, door handle, ...), 36-38 goal position (visible in
  MT1 tasks). World axes: +x right, +y forward (away from the robot base), +z up.

Foot contacts are not observed in HalfCheetah and Walker2d, and Ant's contact forces are
sparse; they are *derived* from the observed joint angles instead: forward kinematics of the
env's own MuJoCo model (the XML shipped with gymnasium) gives each foot's lowest point, and a
foot is "down" when that point is within 3 cm of the floor. This module never steps an env.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

LOCOMOTION = ("halfcheetah", "walker2d", "ant")
DOMAINS = (*LOCOMOTION, "metaworld")

FOOT_CONTACT_M = 0.03
"""A foot whose lowest point is this close to the floor (metres) counts as on the ground."""


class UnknownDomainError(ValueError):
    """A domain name no describer or primitive library knows; the message lists the known ones."""


def check_domain(domain: str) -> None:
    """Raise `UnknownDomainError` unless `domain` is one of `DOMAINS`."""
    if domain not in DOMAINS:
        raise UnknownDomainError(f"unknown continuous domain {domain!r}: choose one of {', '.join(DOMAINS)}")


class Describer(Protocol):
    """Maps one observation of its domain to a short, discretised description."""

    domain: str

    def __call__(self, obs: np.ndarray) -> str: ...


def bucket(value: float, edges: tuple[float, ...], words: tuple[str, ...]) -> str:
    """The word of the interval `value` falls in: `words[i]` for `edges[i-1] <= value < edges[i]`."""
    return words[int(np.searchsorted(np.asarray(edges), value, side="right"))]


class FootKinematics:
    """Where the feet are, from the observed joint angles (forward kinematics of the env's XML)."""

    def __init__(self, xml_file: str, foot_geoms: tuple[str, ...], root_dofs: int) -> None:
        """`root_dofs`: leading qpos entries the observation leaves out (root x; Ant: x and y), set to 0."""
        import mujoco

        self._model = mujoco.MjModel.from_xml_path(xml_file)
        self._data = mujoco.MjData(self._model)
        self._geoms = [self._model.geom(name).id for name in foot_geoms]
        self._root_dofs = root_dofs

    def feet(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lowest z, centre x) of each foot geom, metres; a capsule's lowest z is its lower end minus the radius."""
        import mujoco

        model, data = self._model, self._data
        data.qpos[: self._root_dofs] = 0.0
        data.qpos[self._root_dofs:] = obs[: model.nq - self._root_dofs]
        mujoco.mj_kinematics(model, data)
        radius, half_length = model.geom_size[self._geoms, 0], model.geom_size[self._geoms, 1]
        axis_z = np.abs(data.geom_xmat[self._geoms, 8])  # z component of each capsule's own axis
        lowest = data.geom_xpos[self._geoms, 2] - axis_z * half_length - radius
        return lowest, data.geom_xpos[self._geoms, 0].copy()


def _gym_asset(name: str) -> str:
    import gymnasium.envs.mujoco

    return str(Path(gymnasium.envs.mujoco.__file__).parent / "assets" / name)


def _feet_phrase(down: np.ndarray, names: tuple[str, str]) -> str:
    if down.all():
        return "both feet on the ground"
    if not down.any():
        return "both feet in the air"
    on, off = (names[0], names[1]) if down[0] else (names[1], names[0])
    return f"{on} foot down, {off} foot up"


class HalfCheetahDescriber:
    """Pitch, forward speed and which feet touch the ground."""

    domain = "halfcheetah"

    def __init__(self) -> None:
        self._feet = FootKinematics(_gym_asset("half_cheetah.xml"), ("bfoot", "ffoot"), root_dofs=1)

    def __call__(self, obs: np.ndarray) -> str:
        pitch, vx = float(obs[1]), float(obs[8])
        if abs(pitch) >= 1.5:
            posture = "flipped over"
        else:
            posture = bucket(pitch, (-0.25, 0.25), ("nose up", "body level", "nose down"))
        speed = bucket(vx, (-0.3, 0.3, 2.0, 5.0),
                       ("moving backward", "standing still", "moving slowly forward", "running forward",
                        "running fast forward"))
        feet = _feet_phrase(self._feet.feet(obs)[0] < FOOT_CONTACT_M, ("back", "front"))
        return f"Cheetah {posture}, {speed}, {feet}."


class Walker2dDescriber:
    """Height, lean, forward speed, foot contacts and which leg is ahead."""

    domain = "walker2d"

    def __init__(self) -> None:
        self._feet = FootKinematics(_gym_asset("walker2d_v5.xml"), ("foot_geom", "foot_left_geom"), root_dofs=1)

    def __call__(self, obs: np.ndarray) -> str:
        height = bucket(float(obs[0]), (0.8, 1.1), ("fallen low", "crouching", "upright"))
        lean = bucket(float(obs[1]), (-0.2, 0.2), ("leaning back", "torso straight", "leaning forward"))
        speed = bucket(float(obs[8]), (-0.3, 0.3, 1.5),
                       ("moving backward", "standing still", "moving slowly forward", "walking forward"))
        lowest, foot_x = self._feet.feet(obs)
        down = lowest < FOOT_CONTACT_M
        right_x, left_x = foot_x
        ahead = bucket(right_x - left_x, (-0.15, 0.15), ("left leg ahead", "legs together", "right leg ahead"))
        return f"Walker {height}, {lean}, {speed}, {_feet_phrase(down, ('right', 'left'))}, {ahead}."


class AntDescriber:
    """Torso tilt, direction of travel, and how many feet touch the ground."""

    domain = "ant"
    _COUNT = ("no feet", "one foot", "two feet", "three feet", "all four feet")

    def __init__(self) -> None:
        ankles = ("left_ankle_geom", "right_ankle_geom", "third_ankle_geom", "fourth_ankle_geom")
        self._feet = FootKinematics(_gym_asset("ant.xml"), ankles, root_dofs=2)

    def __call__(self, obs: np.ndarray) -> str:
        _, qx, qy, _ = obs[1:5]
        up_z = 1.0 - 2.0 * (qx * qx + qy * qy)  # z of the torso's up axis in the world
        tilt = bucket(up_z, (0.0, 0.85), ("upside down", "tilted", "upright"))
        vx, vy = float(obs[13]), float(obs[14])
        if np.hypot(vx, vy) < 0.3:
            motion = "standing still"
        elif abs(vx) >= abs(vy):  # world axes: +x is the direction the task rewards
            motion = "moving forward" if vx > 0 else "moving backward"
        else:
            motion = "moving left" if vy > 0 else "moving right"
        down = int((self._feet.feet(obs)[0] < FOOT_CONTACT_M).sum())
        return f"Ant {tilt}, {motion}, {self._COUNT[down]} on the ground."


# Meta-World: what the gripper should go to, and what should go to the goal, per task family.
_MW_TARGETS = {"reach": ("target", False), "push": ("puck", True), "pick-place": ("puck", True),
               "door-open": ("door handle", True)}
_AXES = (("right", "left"), ("forward", "back"), ("up", "down"))


def direction_words(delta: np.ndarray, min_m: float = 0.01) -> str:
    """The dominant direction of a 3-D offset, in the words of the gripper moves.

    World axes: +x right, +y forward, +z up. Only the largest component is named: each
    Meta-World primitive moves along one axis, and one word per relation keeps the number of
    distinct texts (and so of cache entries) small. "here" when it is under `min_m` metres.
    """
    axis = int(np.abs(delta).argmax())
    if abs(delta[axis]) < min_m:
        return "here"
    positive, negative = _AXES[axis]
    return positive if delta[axis] > 0 else negative


def distance_word(distance: float) -> str:
    """`at` (< 4 cm, about Meta-World's success radius), `near` (< 12 cm) or `far`."""
    return bucket(distance, (0.04, 0.12), ("at", "near", "far"))


class MetaWorldDescriber:
    """Gripper opening, where the task's object is from the gripper, where its goal is from the object."""

    domain = "metaworld"

    def __init__(self, task: str = "") -> None:
        family = task.removesuffix("-v3")
        self.noun, self.object_to_goal = _MW_TARGETS.get(family, ("object", True))
        self.task = task

    @staticmethod
    def _relation(offset: np.ndarray, noun: str, reference: str) -> str:
        where = distance_word(float(np.linalg.norm(offset)))
        if where == "at":
            return f"{noun} at the {reference}."
        return f"{noun} {where}, {direction_words(offset)} from the {reference}."

    def __call__(self, obs: np.ndarray) -> str:
        hand, opening, obj, goal = obs[0:3], float(obs[3]), obs[4:7], obs[36:39]
        parts = ["Gripper open." if opening >= 0.8 else "Gripper closed."]
        if not self.object_to_goal:  # reach: the goal itself is what the gripper goes to
            parts.append(self._relation(goal - hand, self.noun.capitalize(), "gripper"))
            return " ".join(parts)
        parts.append(self._relation(obj - hand, self.noun.capitalize(), "gripper"))
        if self.noun == "puck":
            lifted = obj[2] > 0.04  # the puck rests at z ~ 0.02 on the table
            held = lifted and opening < 0.8 and np.linalg.norm((obj - hand)[:2]) < 0.03
            parts.append("Puck held in the gripper." if held else "Puck lifted." if lifted else "Puck on the table.")
        parts.append(self._relation(goal - obj, "Goal", self.noun))
        return " ".join(parts)


_RULE = {"halfcheetah": HalfCheetahDescriber, "walker2d": Walker2dDescriber, "ant": AntDescriber}


def rule_describer(domain: str, task: str = "") -> Describer:
    """The rule-based describer of `domain` (`task`: the Meta-World task, e.g. "push-v3"), one per process."""
    check_domain(domain)
    return _rule(domain, task if domain == "metaworld" else "")


@lru_cache(maxsize=None)
def _rule(domain: str, task: str) -> Describer:
    return MetaWorldDescriber(task) if domain == "metaworld" else _RULE[domain]()


def describe(domain: str, obs: np.ndarray) -> str:
    """The rule-based description of one observation of `domain` (Meta-World: task-agnostic wording)."""
    return rule_describer(domain)(np.asarray(obs))
