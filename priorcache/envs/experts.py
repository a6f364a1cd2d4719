"""Scripted experts that play the platform's text envs, one per domain, for demonstrations.

Every expert has the same small interface (`Expert`): `reset(env, obs, info, seed=...)` after
each `env.reset()`, then `act(obs, info)` before each `env.step()`, which returns the command
the expert wants to play next. The caller plays it through the env (`candidates.index(command)`)
and must check first that it is one of `obs["candidates"]`: an expert knows the game, not the
env's action slots, so its command can be missing there (cut by `env.max_actions`, or an
action the text env does not offer, such as BabyAI's `done` or ALFWorld's `help`). Then the
caller calls `skip()`: True means the command changes nothing in the game, the expert has
taken it as played and can be asked again; False means the episode cannot go on as the
expert plays it. Experts never step the env.

- `AlfworldExpert`: ALFWorld's handcoded expert (`AlfredExpert(expert_type="handcoded")`). It
  reads the game's PDDL facts, which `AlfworldEnv` does not request, so it plays a shadow copy
  of the same game in lockstep: after each command the env played, the shadow plays it too, and
  the two games' feedback must agree (a mismatch raises, so a desynchronised expert can never
  go unnoticed). This doubles the engine's cost: ~4-5 s a game, resets included. When it
  would repeat its last command, the expert plays a random admissible command instead, and
  ALFWorld's admissible commands include `help`, which `AlfworldEnv` leaves out as it changes
  nothing: such a `help` is skippable (`skip()` plays it in the shadow game only). It can also
  label states off its own path (DAgger, `priorcache demos --learner`): `follow(command)` after
  `act()` says the env plays `command` instead, the shadow game plays that, and ALFWorld's
  handcoded expert replans from wherever it leads (ALFWorld trains its own text agents this way).
- `WalkthroughExpert`: TextWorld's own shortest winning command sequence for the game being
  played (`policy_commands` at the start of the game), single generated games and suites
  alike. Generated games are deterministic, so the sequence played from the start wins.
- `BabyAIExpert`: minigrid's `BabyAIBot`, which reads the level's grid, its actions named as
  the text env names them.
- `WebShopExpert`: WebShop's rule baseline (`baselines/webshop_rule.py`); it wins about 60%
  of training goals, and demonstrations keep won episodes only.

`expert_for(env_name)` builds the expert of a config's `env.name`.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import gymnasium as gym
import numpy as np

if TYPE_CHECKING:
    import textworld

Observation = dict[str, Any]
Info = dict[str, Any]

FOLLOWING_EXPERTS = ("alfworld",)
"""Env families whose expert can label states off its own path (`follow`)."""
MAX_SKIPS_IN_A_ROW = 10
"""`playable_command` gives up after this many skipped commands in a row (an expert stuck on them)."""


class Expert(Protocol):
    """A scripted player: `reset` once per episode, then `act` once per step."""

    description: str
    """What the expert is, for dataset cards."""

    def reset(self, env: gym.Env, obs: Observation, info: Info, *, seed: int) -> None:
        """Start following the episode `env` has just reset to; `seed` seeds a random expert."""

    def act(self, obs: Observation, info: Info) -> str:
        """The next command, given the env's latest observation and info (it may not be a candidate)."""

    def skip(self) -> bool:
        """The command `act` returned will not be played: True if the expert can go on without
        it (the command changes nothing in the game), False if the episode must end."""

    def close(self) -> None:
        """Release what the expert holds (idempotent)."""


class AlfworldExpert:
    """ALFWorld's handcoded expert, following an `AlfworldEnv` through a shadow game."""

    description = (
        "ALFWorld's handcoded expert (alfworld 0.4.2 AlfredExpert, expert_type=handcoded), "
        "Python's `random` seeded with the episode seed"
    )

    def __init__(self) -> None:
        self._shadow: textworld.Environment | None = None
        self._shadow_file: Path | None = None
        self._state: textworld.GameState | None = None
        self._pending: str | None = None

    def reset(self, env: gym.Env, obs: Observation, info: Info, *, seed: int) -> None:
        from priorcache.envs.alfworld_env import keeping_argv, start_alfworld_game

        game_file = env.unwrapped.game_file
        # The expert draws from the global `random` from its own reset on.
        random.seed(seed)
        if self._shadow is None:
            self._shadow = start_alfworld_game(game_file, expert=True)
        elif game_file != self._shadow_file:
            with keeping_argv():
                self._shadow.load(str(game_file))
        self._shadow_file = game_file
        with keeping_argv():
            self._state = self._shadow.reset()
        self._pending = None
        self._check_in_step(info)

    def act(self, obs: Observation, info: Info) -> str:
        if self._shadow is None or self._state is None:
            raise RuntimeError("AlfworldExpert.act() needs reset() first")
        if self._pending is not None:
            self._state, _, _ = self._shadow.step(self._pending)
            self._check_in_step(info)
        # The wrapper puts "look" here when its own next command is not admissible.
        self._pending = self._state["extra.expert_plan"][0]
        return self._pending

    def follow(self, command: str) -> None:
        """The env plays `command` (one of the candidates), not the one `act()` returned."""
        if self._pending is None:
            raise RuntimeError("AlfworldExpert.follow() comes after act(), before the env's step")
        self._pending = command

    def skip(self) -> bool:
        from priorcache.envs.alfworld_env import _DROPPED_COMMANDS

        # The env drops exactly the commands that change nothing in the game, so the shadow
        # game can play one on its own and stay in the env's state.
        if self._shadow is None or self._pending not in _DROPPED_COMMANDS:
            return False
        self._state, _, _ = self._shadow.step(self._pending)
        self._pending = None
        return True

    def close(self) -> None:
        if self._shadow is not None:
            self._shadow.close()
            self._shadow = None
            self._shadow_file = None

    def _check_in_step(self, info: Info) -> None:
        if self._state["feedback"] != info["feedback"]:
            raise RuntimeError(
                f"AlfworldExpert lost step with the env on {self._shadow_file}: the shadow game "
                f"answered {self._state['feedback']!r}, the env {info['feedback']!r}; call act() "
                "exactly once before each env.step() and play its command"
            )


class WalkthroughExpert:
    """TextWorld's walkthrough of the game a `TextWorldEnv` plays, played from the start."""

    description = "TextWorld's walkthrough (policy_commands at the start of the game), played open-loop"

    def __init__(self) -> None:
        self._walkthroughs: dict[Path, tuple[str, ...]] = {}
        self._commands: tuple[str, ...] = ()

    def reset(self, env: gym.Env, obs: Observation, info: Info, *, seed: int) -> None:
        game_file = env.unwrapped.game_file
        if game_file not in self._walkthroughs:
            self._walkthroughs[game_file] = _walkthrough(game_file)
        self._commands = self._walkthroughs[game_file]

    def act(self, obs: Observation, info: Info) -> str:
        step = info["steps"]
        if step >= len(self._commands):
            raise RuntimeError(
                f"the walkthrough ({len(self._commands)} commands) is over but the episode is "
                "not: call reset() after each env.reset() and play every command act() returns"
            )
        return self._commands[step]

    def skip(self) -> bool:
        return False

    def close(self) -> None:
        self._walkthroughs.clear()


def _walkthrough(game_file: Path) -> tuple[str, ...]:
    import textworld

    game = textworld.start(str(game_file), request_infos=textworld.EnvInfos(policy_commands=True))
    try:
        return tuple(game.reset()["policy_commands"])
    finally:
        game.close()


class BabyAIExpert:
    """minigrid's `BabyAIBot` playing a `BabyAITextEnv`'s level through its commands."""

    description = "minigrid's BabyAIBot (reads the level's grid), its actions named as the text env names them"

    def __init__(self) -> None:
        from priorcache.envs.babyai_env import _COMMANDS

        # The text env's own command names, so the two can never disagree.
        self._names = {action: command for command, action in _COMMANDS.items()}
        self._bot: Any = None
        self._last: Any = None

    def reset(self, env: gym.Env, obs: Observation, info: Info, *, seed: int) -> None:
        from minigrid.utils.baby_ai_bot import BabyAIBot

        self._bot = BabyAIBot(env.unwrapped.minigrid)
        self._last = None

    def act(self, obs: Observation, info: Info) -> str:
        if self._bot is None:
            raise RuntimeError("BabyAIExpert.act() needs reset() first")
        self._last = self._bot.replan(self._last)
        # An action the text env has no command for (minigrid's `done`) keeps minigrid's name,
        # which is not a candidate: the caller sees and counts it.
        return self._names.get(self._last, self._last.name)

    def skip(self) -> bool:
        return False

    def close(self) -> None:
        self._bot = None


class WebShopExpert:
    """The WebShop rule baseline naming its commands."""

    description = ("WebShop's rule baseline (search the instruction, open the first result, click the "
                   "options the instruction names, buy)")

    def __init__(self) -> None:
        from priorcache.baselines.webshop_rule import WebShopRuleAgent

        self._agent = WebShopRuleAgent()
        self._rng = np.random.default_rng(0)

    def reset(self, env: gym.Env, obs: Observation, info: Info, *, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def act(self, obs: Observation, info: Info) -> str:
        return obs["candidates"][self._agent(obs, self._rng)]

    def skip(self) -> bool:
        return False

    def close(self) -> None:
        """Nothing to free."""


_EXPERTS: dict[str, type] = {
    "alfworld": AlfworldExpert,
    "textworld": WalkthroughExpert,
    "textworld_suite": WalkthroughExpert,
    "babyai": BabyAIExpert,
    "webshop": WebShopExpert,
}


def playable_command(expert: Expert, obs: Observation, info: Info) -> tuple[str, list[str]]:
    """The expert's next command, after it skipped at most `MAX_SKIPS_IN_A_ROW` commands that
    are not among `obs["candidates"]` but change nothing; returns it and the skipped ones.
    A returned command that is not a candidate means the expert cannot go on."""
    skipped: list[str] = []
    command = expert.act(obs, info)
    while command not in obs["candidates"] and len(skipped) < MAX_SKIPS_IN_A_ROW and expert.skip():
        skipped.append(command)
        command = expert.act(obs, info)
    return command, skipped


def expert_for(env_name: str) -> Expert:
    """A new expert for the env family `env_name` (config key `env.name`)."""
    if env_name not in _EXPERTS:
        raise ValueError(f"config key 'env.name': no expert for {env_name!r}; choose one of {', '.join(_EXPERTS)}")
    return _EXPERTS[env_name]()
