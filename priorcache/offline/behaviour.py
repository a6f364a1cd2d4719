"""The behaviour policies that play offline datasets: random, medium and expert.

One family, parameterised by epsilon: at each step, with probability epsilon a uniformly
random admissible command, else the expert's next command *from the current state*:

- `random` = epsilon 1,
- `medium` = epsilon `offline.medium_epsilon` (default 0.5): the expert with noise, which
  wins some episodes and wanders in others,
- `expert` = epsilon 0: the game's walkthrough.

The expert is `TextWorldPlanner`: TextWorld's own winning policy (`policy_commands`), which
TextWorld re-plans after every command (a detour adds the way back), so the expert stays
optimal after the random steps of `medium`. It reads the game in a shadow interpreter played
in lockstep with the env (the platform's `TextWorldEnv` does not request `policy_commands`),
like `envs/experts.py`'s ALFWorld expert. Only TextWorld games (`env.name: textworld` or
`textworld_suite`) have it; other domains can record `random` only.

Continuous control (`ContinuousBehaviour`) uses the same family over Box actions: with
probability epsilon a uniform action in [-1, 1]^d, else the expert's. The expert is a scripted
open-loop gait (`SineGait`), not a trained agent: each joint torque a sine of one period with
its own amplitude and phase. HalfCheetah's (`GAITS`) was found by random search (300 draws of
amplitudes in [0.3, 1], frequency and phases, scored on one 300-step episode, seed 0); it runs
forward at about 2 reward per step on other seeds (return about 610-650 per 300 steps, 2,250
per 1,000), where uniform random actions lose 0.1-0.3 per step. Being open-loop, it does not
react to the state: honest as a fixed, seeded behaviour policy of known quality, not a claim
of good control. Only HalfCheetah has a gait; other continuous envs can record `random`.

This module decides actions; it never steps the env (the recorder in `dataset.py` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

QUALITIES = ("random", "medium", "expert")
"""Dataset qualities, from worst to best."""


class BehaviourError(ValueError):
    """A behaviour policy cannot play this env (the message says what to change)."""


def quality_epsilon(quality: str, medium_epsilon: float) -> float:
    """The probability of a uniformly random action for a dataset quality (see the module docstring)."""
    if quality not in QUALITIES:
        raise BehaviourError(f"dataset quality {quality!r}: choose one of {', '.join(QUALITIES)}")
    return {"random": 1.0, "medium": medium_epsilon, "expert": 0.0}[quality]


class TextWorldPlanner:
    """TextWorld's re-planned walkthrough of the game a `TextWorldEnv` plays."""

    description = "TextWorld's winning policy (policy_commands), re-planned after every command"

    def __init__(self) -> None:
        self._game: Any = None
        self._game_file: Path | None = None
        self._plan: tuple[str, ...] = ()

    def reset(self, game_file: Path) -> None:
        """Follow a new episode of `game_file` (call after each `env.reset()`)."""
        import textworld

        if self._game is None or game_file != self._game_file:
            self.close()
            self._game = textworld.start(str(game_file), request_infos=textworld.EnvInfos(policy_commands=True))
            self._game_file = game_file
        self._plan = tuple(self._game.reset()["policy_commands"] or ())

    def next_command(self) -> str | None:
        """The expert's next command from the current state; None when the game has no plan left."""
        return self._plan[0] if self._plan else None

    def played(self, command: str) -> None:
        """The env played `command` (expert's or not): play it in the shadow game and re-plan."""
        state, _, _ = self._game.step(command)
        self._plan = tuple(state["policy_commands"] or ())

    def close(self) -> None:
        """Stop the shadow interpreter (idempotent)."""
        if self._game is not None:
            self._game.close()
            self._game = None


@dataclass
class BehaviourPolicy:
    """Epsilon-mix of uniform random and `TextWorldPlanner` (see the module docstring)."""

    quality: str
    """random, medium or expert."""
    epsilon: float
    """Probability of a uniformly random admissible command at each step."""

    @classmethod
    def of(cls, quality: str, medium_epsilon: float) -> BehaviourPolicy:
        """The policy of a dataset quality."""
        return cls(quality, quality_epsilon(quality, medium_epsilon))

    def __post_init__(self) -> None:
        self._planner = TextWorldPlanner() if self.epsilon < 1.0 else None

    @property
    def description(self) -> str:
        """What plays the dataset, for its card."""
        if self._planner is None:
            return "uniform random over the admissible commands"
        if self.epsilon == 0.0:
            return self._planner.description
        return (f"epsilon-mix: with probability {self.epsilon:g} a uniformly random admissible command, else "
                f"{self._planner.description}")

    def check_env(self, env_name: str) -> None:
        """BehaviourError unless this policy can play `env.name`."""
        if self._planner is not None and env_name not in ("textworld", "textworld_suite"):
            raise BehaviourError(
                f"dataset quality {self.quality!r} needs the TextWorld planner, but config key 'env.name' is "
                f"{env_name!r}; record 'random' there, or play a TextWorld game"
            )

    def reset(self, game_file: Path) -> None:
        """Start an episode of `game_file`."""
        if self._planner is not None:
            self._planner.reset(game_file)

    def act(self, candidates: tuple[str, ...], rng: np.random.Generator) -> int:
        """The slot of the command to play among `candidates`."""
        command = self._planner.next_command() if self._planner is not None else None
        if command is None or command not in candidates or rng.random() < self.epsilon:
            return int(rng.integers(len(candidates)))
        return candidates.index(command)

    def played(self, command: str) -> None:
        """Tell the planner what the env played."""
        if self._planner is not None:
            self._planner.played(command)

    def close(self) -> None:
        """Release the shadow game."""
        if self._planner is not None:
            self._planner.close()


@dataclass(frozen=True)
class SineGait:
    """An open-loop gait: a_j(t) = clip(amplitude_j · sin(2π t / period + phase_j), -1, 1), t the env step."""

    amplitude: tuple[float, ...]
    period: float
    """Steps per cycle."""
    phase: tuple[float, ...]

    @property
    def description(self) -> str:
        return (f"scripted open-loop sine gait (period {self.period:g} steps, amplitudes "
                f"{', '.join(f'{a:g}' for a in self.amplitude)})")

    def action(self, t: int) -> np.ndarray:
        """The gait's action at env step t."""
        angle = 2.0 * np.pi * t / self.period + np.asarray(self.phase)
        return np.clip(np.asarray(self.amplitude) * np.sin(angle), -1.0, 1.0).astype(np.float32)


GAITS: dict[str, SineGait] = {
    # bthigh, bshin, bfoot, fthigh, fshin, ffoot; one cycle every 5 steps (4 Hz at dt 0.05 s).
    "halfcheetah": SineGait(amplitude=(0.67, 0.42, 0.56, 0.68, 0.64, 0.69), period=5.0,
                            phase=(1.35, 2.8, 0.34, 5.09, 3.68, 5.82)),
}
"""The scripted expert of each continuous domain that has one (see the module docstring)."""


@dataclass
class ContinuousBehaviour:
    """Epsilon-mix of uniform random Box actions and the domain's `SineGait`."""

    quality: str
    epsilon: float
    """Probability of a uniform random action at each step."""
    gait: SineGait | None
    """The expert; None for `random`."""

    @classmethod
    def of(cls, quality: str, medium_epsilon: float, env_name: str) -> ContinuousBehaviour:
        """The policy of a dataset quality on the continuous env `env_name`; BehaviourError if it has no expert."""
        epsilon = quality_epsilon(quality, medium_epsilon)
        if epsilon < 1.0 and env_name not in GAITS:
            raise BehaviourError(
                f"dataset quality {quality!r} needs a scripted gait, which config key 'env.name' = {env_name!r} "
                f"does not have (only {', '.join(GAITS)}); record 'random' there")
        return cls(quality, epsilon, GAITS.get(env_name) if epsilon < 1.0 else None)

    @property
    def description(self) -> str:
        """What plays the dataset, for its card."""
        if self.gait is None:
            return "uniform random actions in [-1, 1]^d"
        if self.epsilon == 0.0:
            return self.gait.description
        return (f"epsilon-mix: with probability {self.epsilon:g} a uniform random action, else the "
                f"{self.gait.description}")

    def act(self, t: int, action_dim: int, rng: np.random.Generator) -> np.ndarray:
        """The action at env step t of the episode."""
        if self.gait is None or rng.random() < self.epsilon:
            return rng.uniform(-1.0, 1.0, action_dim).astype(np.float32)
        return self.gait.action(t)
