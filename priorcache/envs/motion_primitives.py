"""Motion primitives: the symbolic actions the LLM prior scores in the continuous domains.

Each primitive is a name (the text the LLM scores after the state description) and a
diagonal Gaussian over the env's continuous action in [-1, 1]^d; the prior over continuous
actions is the mixture of the primitives' Gaussians weighted by the LLM's probabilities
(the hybrid action space of the paper; the mixture and SAC-Prior live in the algorithm code).
The libraries are fixed data: a changed name or pattern changes what cached priors mean, so
change them together with the prompt template version.

Actuator orders (from the env XML; checked in tests against each model's actuator list):
- halfcheetah: bthigh, bshin, bfoot, fthigh, fshin, ffoot. A positive torque turns a joint
  about +y, which swings the limb below it backward (towards -x).
- walker2d: right thigh, knee, foot, then left thigh, knee, foot. Joint axis -y: a positive
  thigh torque swings the leg forward; a positive knee torque straightens the knee (range
  [-2.6, 0], 0 = straight).
- ant: hip_4, ankle_4, hip_1, ankle_1, hip_2, ankle_2, hip_3, ankle_3. Leg 1 points to +x+y
  (front left, +x being the rewarded direction), 2 to -x+y (back left), 3 to -x-y (back right),
  4 to +x-y (front right). Feet go down (body up) with ankle_1 and ankle_4 positive and
  ankle_2 and ankle_3 negative; feet sweep backward (towards -x) with hip_1 and hip_2 positive
  and hip_3 and hip_4 negative.
- metaworld: gripper dx, dy, dz (+x right, +y forward, +z up) and grip effort (+1 closes).
The measured effect of holding each primitive is in docs/environments/continuous.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from priorcache.envs.describers import check_domain

ACTUATORS: dict[str, tuple[str, ...]] = {
    "halfcheetah": ("bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot"),
    "walker2d": ("thigh_joint", "leg_joint", "foot_joint", "thigh_left_joint", "leg_left_joint", "foot_left_joint"),
    "ant": ("hip_4", "ankle_4", "hip_1", "ankle_1", "hip_2", "ankle_2", "hip_3", "ankle_3"),
    "metaworld": ("dx", "dy", "dz", "grip"),
}
"""The action dimensions of each domain, in order (for the locomotion envs: the joint each actuator drives)."""


@dataclass(frozen=True)
class Primitive:
    """A symbolic action and the Gaussian over continuous actions it stands for."""

    name: str
    """The text the LLM scores, e.g. "swing back leg backward"."""
    mean: np.ndarray
    """(action_dim,) in [-1, 1]."""
    std: np.ndarray
    """(action_dim,) > 0."""


_STD = 0.3
"""Spread of a primitive around its pattern: wide enough that the mixture covers the space between primitives."""

# Name -> action pattern (the Gaussian's mean); the strength 0.8 keeps most of the mass inside [-1, 1].
_PATTERNS: dict[str, dict[str, tuple[float, ...]]] = {
    "halfcheetah": {  # bthigh, bshin, bfoot, fthigh, fshin, ffoot
        "swing back leg backward": (0.8, 0, 0, 0, 0, 0),
        "swing back leg forward": (-0.8, 0, 0, 0, 0, 0),
        "swing front leg backward": (0, 0, 0, 0.8, 0, 0),
        "swing front leg forward": (0, 0, 0, -0.8, 0, 0),
        "push both legs backward": (0.8, 0.8, 0.8, 0.8, 0.8, 0.8),
        "gather legs under the body": (-0.8, -0.8, -0.8, 0.8, 0.8, 0.8),
        "stretch legs apart": (0.8, 0.8, 0.8, -0.8, -0.8, -0.8),
        "hold still": (0, 0, 0, 0, 0, 0),
    },
    "walker2d": {  # right thigh, knee, foot, left thigh, knee, foot
        "swing right leg forward": (0.8, 0, 0, 0, 0, 0),
        "swing left leg forward": (0, 0, 0, 0.8, 0, 0),
        "step right leg forward, push left leg back": (0.8, 0, 0, -0.8, 0.5, 0),
        "step left leg forward, push right leg back": (-0.8, 0.5, 0, 0.8, 0, 0),
        "bend both knees": (0, -0.8, 0, 0, -0.8, 0),
        "straighten both legs": (0, 0.8, 0, 0, 0.8, 0),
        "push both legs back": (-0.8, 0.5, 0.5, -0.8, 0.5, 0.5),
        "hold still": (0, 0, 0, 0, 0, 0),
    },
    "ant": {  # hip_4, ankle_4, hip_1, ankle_1, hip_2, ankle_2, hip_3, ankle_3
        # A diagonal pair pushes down and sweeps back while the other pair lifts and swings
        # forward; at 0.8 the push bounces the torso out of the healthy height range.
        "step with front left and back right legs": (0.5, -0.5, 0.5, 0.5, -0.5, 0.5, -0.5, -0.5),
        "step with front right and back left legs": (-0.5, 0.5, -0.5, -0.5, 0.5, -0.5, 0.5, 0.5),
        "push all feet down": (0, 0.8, 0, 0.8, 0, -0.8, 0, -0.8),
        "lift all feet": (0, -0.8, 0, -0.8, 0, 0.8, 0, 0.8),
        "lift front legs": (0, -0.8, 0, -0.8, 0, -0.8, 0, -0.8),
        "lift back legs": (0, 0.8, 0, 0.8, 0, 0.8, 0, 0.8),
        "turn left": (-0.8, 0, -0.8, 0, -0.8, 0, -0.8, 0),
        "turn right": (0.8, 0, 0.8, 0, 0.8, 0, 0.8, 0),
        "hold still": (0, 0, 0, 0, 0, 0, 0, 0),
    },
    "metaworld": {  # dx, dy, dz, grip
        "move gripper forward": (0, 0.8, 0, 0),
        "move gripper back": (0, -0.8, 0, 0),
        "move gripper left": (-0.8, 0, 0, 0),
        "move gripper right": (0.8, 0, 0, 0),
        "move gripper up": (0, 0, 0.8, 0),
        "move gripper down": (0, 0, -0.8, 0),
        "close gripper": (0, 0, 0, 0.8),
        "open gripper": (0, 0, 0, -0.8),
        "lift with gripper closed": (0, 0, 0.8, 0.8),
        "lower with gripper open": (0, 0, -0.8, -0.8),
    },
}

# A Meta-World move says nothing about the grip: its wide spread there lets the posterior keep
# the gripper closed while it carries an object.
_MW_GRIP_STD = 0.8


def _std(domain: str, name: str, dim: int) -> np.ndarray:
    std = np.full(dim, _STD)
    if domain == "metaworld" and name.startswith("move gripper"):
        std[3] = _MW_GRIP_STD
    return std


@lru_cache(maxsize=None)
def primitives(domain: str) -> tuple[Primitive, ...]:
    """The primitive library of `domain` (an `env.name`; "metaworld" for every Meta-World task)."""
    check_domain(domain)
    dim = len(ACTUATORS[domain])
    library = []
    for name, pattern in _PATTERNS[domain].items():
        mean = np.asarray(pattern, dtype=np.float64)
        mean.setflags(write=False)
        std = _std(domain, name, dim)
        std.setflags(write=False)
        library.append(Primitive(name, mean, std))
    return tuple(library)
