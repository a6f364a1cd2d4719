"""The behaviour policies that play offline datasets: random, medium and expert.

Every policy answers `act(obs, env, t, rng)` with the action to play in the recorder's env
(`dataset.py`), which steps the env and then calls `played()`:

- `random`: uniform over the admissible commands (text) or over [-1, 1]^d (continuous).
- `medium`: a *partially trained* agent (`TrainedBehaviour`): the online experiment
  `offline.medium_experiment`, trained without the LLM prior for the short budget of
  `offline.medium_overrides` (PPO on text games, SAC on locomotion), sampling its stochastic
  policy, as D4RL's "medium" is an online agent stopped early. It trains in its own MLflow run,
  on the dataset config's env, each time a medium dataset is recorded (`offline/medium.py`).
  Trained without the prior so that the data do not already carry the prior's preferences,
  which CQL-Prior would then be rewarded for copying.
- `expert`: a policy that knows the task.
  - Text: `TextWorldPlanner`, TextWorld's own winning policy (`policy_commands`), re-planned
    after every command. It reads the game in a shadow interpreter played in lockstep with the
    env (the platform's `TextWorldEnv` does not request `policy_commands`), like
    `envs/experts.py`'s ALFWorld expert. Only TextWorld games (`env.name: textworld` or
    `textworld_suite`) have it.
  - Continuous: a scripted open-loop gait (`SineGait`), not a trained agent: each joint torque
    a sine of one period with its own amplitude and phase. HalfCheetah's (`GAITS`) was found by
    random search (300 draws of amplitudes in [0.3, 1], frequency and phases, scored on one
    300-step episode, seed 0); it runs forward at about 2 reward per step on other seeds
    (return about 610-650 per 300 steps, 2,250 per 1,000), where uniform random actions lose
    0.1-0.3 per step. Being open-loop, it does not react to the state: honest as a fixed,
    seeded behaviour policy of known quality, not a claim of good control. Only HalfCheetah
    has a gait.

This module decides actions; it never steps the env.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

QUALITIES = ("random", "medium", "expert")
"""Dataset qualities, from worst to best."""


class BehaviourError(ValueError):
    """A behaviour policy cannot play this env (the message says what to change)."""


class Behaviour:
    """What plays a dataset: `reset` per episode, `act` per step, `played` after the env stepped."""

    description = ""
    """What plays the dataset, in words (the dataset card's `behaviour`)."""

    def reset(self, env: gym.Env) -> None:
        """A new episode of `env` started."""

    def act(self, obs: Any, env: gym.Env, t: int, rng: np.random.Generator) -> int | np.ndarray:
        """The action at step `t` of the episode, given the observation the env returned."""
        raise NotImplementedError

    def played(self) -> None:
        """The env played the action `act` returned."""

    def close(self) -> None:
        """Release what the policy holds (idempotent)."""


class RandomBehaviour(Behaviour):
    """Uniform random: over the admissible commands, or over a continuous env's Box."""

    def __init__(self, continuous: bool) -> None:
        self.continuous = continuous
        self.description = ("uniform random actions in [-1, 1]^d" if continuous
                            else "uniform random over the admissible commands")

    def act(self, obs: Any, env: gym.Env, t: int, rng: np.random.Generator) -> int | np.ndarray:
        if self.continuous:
            return rng.uniform(-1.0, 1.0, env.action_space.shape[0]).astype(np.float32)
        return int(rng.integers(len(env.candidates)))


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


class PlannerBehaviour(Behaviour):
    """The text expert: the `TextWorldPlanner`'s next command (a random one if it has none)."""

    description = TextWorldPlanner.description

    def __init__(self) -> None:
        self._planner = TextWorldPlanner()
        self._command = ""

    def reset(self, env: gym.Env) -> None:
        self._planner.reset(env.unwrapped.game_file)

    def act(self, obs: Any, env: gym.Env, t: int, rng: np.random.Generator) -> int:
        candidates = env.candidates
        command = self._planner.next_command()
        slot = candidates.index(command) if command in candidates else int(rng.integers(len(candidates)))
        self._command = candidates[slot]
        return slot

    def played(self) -> None:
        self._planner.played(self._command)

    def close(self) -> None:
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


class GaitBehaviour(Behaviour):
    """The continuous expert: the domain's `SineGait`."""

    def __init__(self, gait: SineGait) -> None:
        self.gait = gait
        self.description = gait.description

    def act(self, obs: Any, env: gym.Env, t: int, rng: np.random.Generator) -> np.ndarray:
        return self.gait.action(t)


class TrainedBehaviour(Behaviour):
    """A trained RLlib module sampling its stochastic policy (the `medium` quality)."""

    def __init__(self, module: Any, continuous: bool, description: str) -> None:
        from priorcache.evaluation import continuous_module_policy, module_policy

        policy = continuous_module_policy if continuous else module_policy
        self._policy = policy(module, greedy=False)
        self.description = description

    def act(self, obs: Any, env: gym.Env, t: int, rng: np.random.Generator) -> int | np.ndarray:
        return self._policy(obs, rng)


def expert_behaviour(env_name: str, continuous: bool) -> Behaviour:
    """The expert of `env.name`; BehaviourError when the domain has none."""
    if continuous:
        if env_name not in GAITS:
            raise BehaviourError(
                f"dataset quality 'expert' needs a scripted gait, which config key 'env.name' = {env_name!r} does "
                f"not have (only {', '.join(GAITS)}); record 'random' or 'medium' there")
        return GaitBehaviour(GAITS[env_name])
    if env_name not in ("textworld", "textworld_suite"):
        raise BehaviourError(
            f"dataset quality 'expert' needs the TextWorld planner, but config key 'env.name' is {env_name!r}; "
            "record 'random' or 'medium' there, or play a TextWorld game")
    return PlannerBehaviour()

