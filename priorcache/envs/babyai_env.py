"""Gymnasium adapter for BabyAI levels (minigrid) as text: described views, named actions.

`BabyAITextEnv` plays one BabyAI level (a gymnasium id registered by minigrid, config key
`env.babyai.level`) with the contract every text env shares (`candidates.py`): the agent picks
an index into the current list of commands, the observation is text, turned into arrays
downstream by `PriorFeaturesWrapper`. It describes the grid in words in the style of
BabyAI-Text (Carta et al. 2023, "Grounding Large Language Models in Interactive Environments
with Online Reinforcement Learning", GLAM); it never renders images.

Observation (a plain dict):
- `state`: the mission as a goal line, then one sentence per object the agent sees in its
  egocentric 7x7 partial view (minigrid's own view and occlusion), in relative coordinates,
  then what is directly in front of it and what it carries ("You carry a grey key."), e.g.
  (`BabyAI-GoToObjMaze-v0`, seed 0, on the winning step)

      Goal: go to the grey key.
      You see a grey key 1 step forward.
      You see an open yellow door 2 steps left.
      You see a wall 2 steps forward.
      You see a closed blue door 1 step right and 2 steps forward.
      You see an open yellow door 3 steps left and 2 steps forward.
      In front of you is a grey key.
      You carry nothing.

  Walls are only given as the nearest visible wall cell straight ahead, straight to the left
  and straight to the right (a room's walls would otherwise be most of the text); every other
  object (doors with their state, keys, balls, boxes) is listed wherever it is in view.
  Sentences are sorted nearest first (by steps away, then forward, then left to right), so
  the text is a function of what the agent sees, which is what lets an LLM-prior cache hit
  exactly. It is an observation, not the full state: what lies outside the view, behind
  closed doors or inside boxes is not shown, and two places that look alike give the same
  text. The feedback to the last action ("You picked up the red ball.", "You could not move
  forward: a wall is in the way.") is left out of `state` and put in `info["feedback"]` for
  logging; the description already shows what the action changed.
- `candidates`: BabyAI's six actions as commands, the same in every state: `drop`,
  `go forward`, `pick up`, `toggle`, `turn left`, `turn right` (sorted; minigrid's `done` is
  left out: BabyAI only asks for it when the environment variable BABYAI_DONE_ACTIONS is set,
  which this env does not support). With `max_actions` < 6 the last ones are dropped and
  counted, so keep `env.max_actions` >= 6.

Reward is minigrid's: on success 1 - 0.9 * (steps / the level's own step limit), else 0.
Terminated when the level says so (mission accomplished, or failed in the few strict levels:
then the reward is 0 and `lost` still False); truncated after `max_steps` steps here or when
the level's own step limit (usually larger) runs out. `info`: `won` (terminated with a
positive reward), `lost` (always False), `score` (the episode's reward so far), `max_score`
(1.0), `steps`, `candidates_truncated`, `feedback`.

Seeding: BabyAI draws the layout, the objects and the mission from the level's RNG at each
reset. `reset(seed=s)` seeds both `self.np_random` and that RNG with `s`, so a seed always gives
the same level, the same one `gymnasium.make(level).reset(seed=s)` gives; `reset()` without a
seed draws the next level from the RNG as seeded last (unseeded before the first seed).

Levels known to work (a scripted bot playing through these commands wins them, see the tests):
`BabyAI-GoToObj-v0`, `BabyAI-PickupLoc-v0` (single room) and `BabyAI-GoToObjMaze-v0` (3x3
rooms joined by closed doors). Any `BabyAI-*` id is accepted; levels whose instructions need
several rooms or long plans get long episodes, so raise `env.max_steps` for them (the bot
needs up to ~100 steps in GoToObjMaze; its own limit there is 576).

Cost, measured on this project's 2-core machine: ~0.2 ms a step with random actions, resets
included (minigrid's own step ~0.1 ms, describing the view ~0.08 ms).

What this module must not do: render pixels, or reach into the level beyond reading its grid,
agent and mission.
"""

from __future__ import annotations

import contextlib
import difflib
import io
from typing import Any, SupportsIndex

import gymnasium as gym
import minigrid as _minigrid  # noqa: F401  (importing it registers the BabyAI-* gymnasium ids)
from gymnasium import spaces
from minigrid.core.actions import Actions
from minigrid.core.world_object import WorldObj
from minigrid.minigrid_env import MiniGridEnv

from priorcache.envs.candidates import action_slots, candidate_index, text_observation_space

Observation = dict[str, Any]
"""`{"state": str, "candidates": tuple[str, ...]}`."""
Info = dict[str, Any]

_LEVEL_PREFIX = "BabyAI-"
_COMMANDS: dict[str, int] = {
    "turn left": Actions.left,
    "turn right": Actions.right,
    "go forward": Actions.forward,
    "pick up": Actions.pickup,
    "drop": Actions.drop,
    "toggle": Actions.toggle,
}


class BabyAILevelError(ValueError):
    """The configured BabyAI level (config key `env.babyai.level`) cannot be used."""


def babyai_levels() -> list[str]:
    """The BabyAI gymnasium ids minigrid registers, sorted."""
    return sorted(env_id for env_id in gym.registry if env_id.startswith(_LEVEL_PREFIX))


def check_level(level: str) -> None:
    """Raise `BabyAILevelError`, naming close matches, unless `level` is a registered BabyAI id."""
    levels = babyai_levels()
    if level in levels:
        return
    where = f"config key 'env.babyai.level': {level!r} is not a registered BabyAI level"
    close = difflib.get_close_matches(level, levels, n=5, cutoff=0.6)
    if close:
        hint = f"did you mean {', '.join(close)}?"
    else:
        hint = f"choose one of minigrid's {len(levels)} 'BabyAI-*' gymnasium ids, e.g. {', '.join(levels[:3])}"
    raise BabyAILevelError(f"{where}; {hint} (default: BabyAI-GoToObj-v0)")


class BabyAITextEnv(gym.Env[Observation, int]):
    """One BabyAI level as a text gymnasium env; see the module docstring for observations.

    Actions index `candidates` (`Discrete(max_actions)`); an index past the end of the
    current list raises `ValueError` (policies mask those slots).
    """

    metadata = {"render_modes": []}

    def __init__(
        self, level: str = "BabyAI-GoToObj-v0", *, max_steps: int = 64, max_actions: int = 32
    ) -> None:
        for key, value in (("max_steps", max_steps), ("max_actions", max_actions)):
            if value < 1:
                raise ValueError(f"{key} (config key 'env.{key}') must be >= 1, got {value}")
        check_level(level)
        self.level = level
        self.max_steps = max_steps
        self.max_actions = max_actions
        self.action_space = spaces.Discrete(max_actions)
        self.observation_space = text_observation_space()

        self._env: gym.Env | None = gym.make(level)
        self._candidates, self._dropped = action_slots(_COMMANDS, max_actions)
        self._score = 0.0
        self._steps = 0
        self._done = True

    @property
    def minigrid(self) -> MiniGridEnv:
        """The underlying minigrid level (read it, e.g. for a scripted expert; do not step it)."""
        return self._live_env().unwrapped

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, Info]:
        super().reset(seed=seed)
        env = self._live_env()
        # minigrid prints (stdout) each rejected layout while it samples a level; that is a
        # normal retry, not something the training logs should carry.
        # (redirect_stdout swaps sys.stdout process-wide for the few ms a reset takes.)
        with contextlib.redirect_stdout(io.StringIO()):
            env.reset(seed=seed, options=options)
        self._score = 0.0
        self._steps = 0
        self._done = False
        return self._observe(), self._info(won=False, feedback="")

    def step(self, action: SupportsIndex) -> tuple[Observation, float, bool, bool, Info]:
        if self._done:
            raise RuntimeError(
                "BabyAITextEnv.step() needs reset() first, and again after an episode ends"
            )
        command = self._candidates[candidate_index(action, len(self._candidates))]
        level = self.minigrid
        before = _Before(level)
        _, reward, terminated, truncated, _ = self._live_env().step(_COMMANDS[command])
        reward = float(reward)
        self._score += reward
        self._steps += 1
        terminated = bool(terminated)
        truncated = not terminated and (bool(truncated) or self._steps >= self.max_steps)
        self._done = terminated or truncated
        info = self._info(won=terminated and reward > 0, feedback=before.feedback(command, level))
        return self._observe(), reward, terminated, truncated, info

    def close(self) -> None:
        """Close the minigrid level (idempotent); `reset()` is not possible afterwards."""
        if self._env is not None:
            self._env.close()
            self._env = None
        self._done = True

    def _live_env(self) -> gym.Env:
        if self._env is None:
            raise RuntimeError("BabyAITextEnv is closed; create a new one")
        return self._env

    def _observe(self) -> Observation:
        return {"state": describe(self.minigrid), "candidates": self._candidates}

    def _info(self, *, won: bool, feedback: str) -> Info:
        return {
            "won": won,
            "lost": False,
            "score": self._score,
            "max_score": 1.0,
            "steps": self._steps,
            "candidates_truncated": self._dropped,
            "feedback": feedback,
        }


def describe(level: MiniGridEnv) -> str:
    """The `state` text of a reset minigrid level: goal, view, what is in front, what is carried."""
    mission = level.mission.strip()
    lines = [f"Goal: {mission}" + ("" if mission.endswith((".", "!", "?")) else ".")]

    grid, visible = level.gen_obs_grid()
    # The view is rotated so the agent stands at the bottom middle, facing up (decreasing j).
    ax, ay = grid.width // 2, grid.height - 1
    seen: list[tuple[int, int, int, str]] = []
    nearest_walls: dict[str, tuple[int, int, int]] = {}  # direction -> (steps, forward, right)
    for i in range(grid.width):
        for j in range(grid.height):
            cell = grid.get(i, j)
            if cell is None or (i, j) == (ax, ay) or not visible[i, j]:
                continue
            forward, right = ay - j, i - ax
            if cell.type == "wall":
                if right == 0:
                    direction, steps = "forward", forward
                elif forward == 0:
                    direction, steps = ("right" if right > 0 else "left"), abs(right)
                else:
                    continue
                known = nearest_walls.get(direction)
                if known is None or steps < known[0]:
                    nearest_walls[direction] = (steps, forward, right)
                continue
            seen.append((abs(right) + forward, forward, right, _a(_noun(cell))))
    seen.extend((steps, forward, right, "a wall") for steps, forward, right in nearest_walls.values())
    for _, forward, right, thing in sorted(seen):
        lines.append(f"You see {thing} {_where(forward, right)}.")

    front = level.grid.get(*level.front_pos)
    lines.append(f"In front of you is {_a(_noun(front)) if front is not None else 'empty floor'}.")
    lines.append(f"You carry {_a(_noun(level.carrying)) if level.carrying else 'nothing'}.")
    return "\n".join(lines)


def _noun(obj: WorldObj) -> str:
    if obj.type == "wall":
        return "wall"
    if obj.type == "lava":
        return "lava"
    if obj.type == "door":
        state = "open" if obj.is_open else "locked" if obj.is_locked else "closed"
        return f"{state} {obj.color} door"
    if obj.type == "floor":
        return f"{obj.color} floor tile"
    return f"{obj.color} {obj.type}"


def _a(noun: str) -> str:
    if noun == "lava":
        return noun
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _the(noun: str) -> str:
    return noun if noun == "lava" else f"the {noun}"


def _steps(n: int, direction: str) -> str:
    return f"{n} step{'' if n == 1 else 's'} {direction}"


def _where(forward: int, right: int) -> str:
    parts = []
    if right:
        parts.append(_steps(abs(right), "right" if right > 0 else "left"))
    if forward:
        parts.append(_steps(forward, "forward"))
    return " and ".join(parts)


class _Before:
    """What an action can change, noted before it runs, to say afterwards what it did."""

    def __init__(self, level: MiniGridEnv) -> None:
        self.pos = tuple(level.agent_pos)
        self.carrying = level.carrying
        self.front = level.grid.get(*level.front_pos)
        self.front_noun = _noun(self.front) if self.front is not None else None

    def feedback(self, command: str, level: MiniGridEnv) -> str:
        front = level.grid.get(*level.front_pos)
        if command in ("turn left", "turn right"):
            return f"You turned {command.split()[1]}."
        if command == "go forward":
            if tuple(level.agent_pos) != self.pos:
                return "You moved forward."
            return f"You could not move forward: {_a(self.front_noun)} is in the way."
        if command == "pick up":
            if self.carrying is None and level.carrying is not None:
                return f"You picked up {_the(_noun(level.carrying))}."
            if self.carrying is not None:
                return f"You could not pick anything up: you already carry {_a(_noun(self.carrying))}."
            if self.front is None:
                return "There is nothing in front of you to pick up."
            return f"You could not pick up {_the(self.front_noun)}."
        if command == "drop":
            if self.carrying is not None and level.carrying is None:
                return f"You dropped {_the(_noun(self.carrying))}."
            if self.carrying is None:
                return "You carry nothing to drop."
            return f"You could not drop {_the(_noun(self.carrying))}: {_a(self.front_noun)} is in the way."
        # toggle
        if self.front is None:
            return "There is nothing in front of you to toggle."
        after = _noun(front) if front is not None else None
        if self.front.type == "box" and front is not self.front:
            inside = f"it held {_a(after)}" if after is not None else "it was empty"
            return f"You opened {_the(self.front_noun)}: {inside}."
        if self.front.type == "door" and after != self.front_noun:
            color = self.front.color
            if self.front_noun.startswith("locked"):
                return f"You unlocked and opened the {color} door."
            return f"You {'opened' if front.is_open else 'closed'} the {color} door."
        if self.front.type == "door" and self.front.is_locked:
            return f"The {self.front.color} door is locked; it opens with a {self.front.color} key."
        return f"Nothing happened: {_the(self.front_noun)} cannot be toggled."
