"""Gymnasium adapter for TextWorld games: text observations, indexed command actions.

`TextWorldEnv` plays one compiled TextWorld game (`.z8` plus its `.json` metadata, see
`textworld_games.py`) or a list of them (a suite's split, see `textworld_suites.py`): each
`reset()` then picks one game with the env's seeded `np_random`, or the one named by
`options={"game_index": i}`, like `AlfworldEnv`. The agent picks an index into the current list
of admissible commands; the observation is text, turned into arrays downstream by
`PriorFeaturesWrapper`.

Observation (a plain dict):
- `state`: objective + current room description + inventory + score ("Score: 1 of 3."). The
  score line makes the text Markov for the reward: points are paid once per sub-goal, so
  without it a room before and after its point was collected reads the same, and a
  Q-learner bootstrapping through it overvalues walking back (DQN-Prior learned to loop
  until this line was added). It deliberately leaves out the
  feedback to the last command ("You take the key.", "You can't go that way."), so the same
  game state always yields the same text, which is what lets an LLM-prior cache hit exactly.
  Nothing is lost for acting: admissible commands always succeed, so the feedback only
  echoes a change that the description or the inventory already shows, or is the text of
  an `examine ...`, which changes no state. It is an observation, not the full game state:
  objects left in other rooms or inside closed containers are not shown. The last feedback
  is in `info["feedback"]` for logging.
- `candidates`: the admissible commands, sorted and deduplicated, at most `max_actions`.

Episodes are deterministic functions of the actions: generated games use no randomness (and
seed their interpreter RNG with a constant when play begins), so `reset(seed=...)` only seeds
`self.np_random`, as gymnasium expects, and with several games picks the game with it.

One interpreter plays all the games: `reset()` loads another game into it only when the game
changes (Jericho keeps every story file it has read in memory; a switch parses the game's `.json`
metadata again). Measured on 12-game suites of each family: resetting the loaded game takes
~8-12 ms, loading another game ~5-18 ms more (cooking's larger metadata is the slow end), a step
~3-5 ms. One interpreter per game would save that switch time per episode, but costs ~0.4-2.4 MB
and ~25-55 ms of start-up a game, against ~0.5-1.2 MB a game here. Every game is loaded and
checked once in `__init__` (~20-60 ms a game), so a broken file fails there and not
mid-training.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, SupportsIndex

import gymnasium as gym
import textworld
from gymnasium import spaces

from priorcache.envs.candidates import (
    action_slots,
    candidate_index,
    game_index,
    text_observation_space,
)
from priorcache.envs.textworld_games import GAME_SUFFIX

Observation = dict[str, Any]
"""`{"state": str, "candidates": tuple[str, ...]}`."""
Info = dict[str, Any]

_REQUEST_INFOS = textworld.EnvInfos(
    admissible_commands=True, description=True, inventory=True, objective=True,
    won=True, lost=True, score=True, max_score=True, feedback=True,
)

# Interpreter meta commands: they never change the game state and only burn steps. TextWorld's
# own command grammar does not produce them today; the filter keeps that true for any game.
_META_COMMANDS = frozenset({"help", "hint", "quit", "restart", "restore", "save", "score", "undo"})

_FIX = "or leave 'env.game_file' empty to generate the game described by 'env.game'"
_SUITE_FIX = (
    "or let the suite ('env.suite.*') generate it again in 'env.games_dir' (delete the broken "
    ".z8 and its .json first)"
)


class GameFileError(ValueError):
    """A configured game file (config key `env.game_file`, or a game of the suite
    `env.suite.*` in `env.games_dir`) cannot be played."""


class _Source:
    """Where a game file came from, for error messages: the config key and the fix."""

    def __init__(self, suite: bool) -> None:
        self.key = "a game of the suite 'env.suite.*' in 'env.games_dir'" if suite else "config key 'env.game_file'"
        self.fix = _SUITE_FIX if suite else _FIX


class TextWorldEnv(gym.Env[Observation, int]):
    """TextWorld games as a gymnasium env; see the module docstring for observations.

    `game_files` is one game file or a sequence of them. Actions index `candidates`
    (`Discrete(max_actions)`); an index past the end of the current list raises `ValueError`
    (policies mask those slots). Reward is the increase in the TextWorld score on that step.
    Terminated when the game is won or lost, truncated after `max_steps` steps. `reset(seed=...)`
    picks the game with `np_random` (with one game, nothing is drawn), so a seed always selects
    the same game; `reset(options={"game_index": i})` plays `game_files[i]`. `game_file` is the
    game being played (before the first reset: the first game). `info` (reset and every step):
    `won`, `lost`, `score`, `max_score`, `steps`, `candidates_truncated` (admissible commands
    dropped from this observation because there were more than `max_actions`) and `feedback`
    (the game's last output).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        game_files: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        max_steps: int = 50,
        max_actions: int = 32,
    ) -> None:
        for key, value in (("max_steps", max_steps), ("max_actions", max_actions)):
            if value < 1:
                raise ValueError(f"{key} (config key 'env.{key}') must be >= 1, got {value}")
        suite = not isinstance(game_files, (str, os.PathLike))
        self._source = _Source(suite)
        self.game_files = tuple(Path(g) for g in game_files) if suite else (Path(game_files),)
        if not self.game_files:
            raise GameFileError(
                "TextWorldEnv got no game files; check config keys 'env.suite.train_games' / "
                "'env.suite.eval_games'"
            )
        self.max_steps = max_steps
        self.max_actions = max_actions
        self.action_space = spaces.Discrete(max_actions)
        self.observation_space = text_observation_space()

        for path in self.game_files:
            _check_game_file(path, self._source)
        self._game: textworld.Environment | None = None
        try:
            for path in reversed(self.game_files):  # ends with the first game loaded
                self._load_checked(path)
        except BaseException:
            self.close()
            raise
        self.game_file: Path | None = self.game_files[0]
        """The game being played (before the first reset: the first game; None after a failed
        load)."""
        self._candidates: tuple[str, ...] = ()
        self._dropped = 0
        self._score = 0
        self._steps = 0
        self._done = True

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, Info]:
        super().reset(seed=seed)
        game = self._live_game()
        self._done = True  # until the new episode has started
        index = 0
        if len(self.game_files) > 1 or "game_index" in (options or {}):
            index = game_index(options, len(self.game_files), self.np_random)
        if self.game_files[index] != self.game_file:
            path = self.game_files[index]
            try:
                game.load(str(path))
            except Exception as exc:
                self.game_file = None  # the interpreter may be half-switched: load again next time
                raise GameFileError(
                    f"{self._source.key}: {path} could not be loaded by TextWorld "
                    f"({type(exc).__name__}: {exc}); regenerate it {self._source.fix}"
                ) from exc
            self.game_file = path
        game_state = game.reset()
        self._score = game_state["score"]
        self._steps = 0
        self._done = False
        return self._observe(game_state), self._info(game_state)

    def step(self, action: SupportsIndex) -> tuple[Observation, float, bool, bool, Info]:
        if self._done:
            raise RuntimeError(
                "TextWorldEnv.step() needs reset() first, and again after an episode ends"
            )
        command = self._candidates[candidate_index(action, len(self._candidates))]
        game_state, _, _ = self._live_game().step(command)
        reward = float(game_state["score"] - self._score)
        self._score = game_state["score"]
        self._steps += 1
        terminated = bool(game_state["won"] or game_state["lost"])
        truncated = not terminated and self._steps >= self.max_steps
        self._done = terminated or truncated
        return self._observe(game_state), reward, terminated, truncated, self._info(game_state)

    def close(self) -> None:
        """Shut the game interpreter down (idempotent); `reset()` is not possible afterwards."""
        if self._game is not None:
            self._game.close()
            self._game = None

    def _live_game(self) -> textworld.Environment:
        if self._game is None:
            raise RuntimeError("TextWorldEnv is closed; create a new one")
        return self._game

    def _load_checked(self, path: Path) -> None:
        """Load (starting the interpreter if needed) and reset `path` once, so a broken file
        fails here and not mid-training."""
        try:
            if self._game is None:
                self._game = textworld.start(str(path), request_infos=_REQUEST_INFOS)
            else:
                self._game.load(str(path))
            game_state = self._game.reset()
        except Exception as exc:
            raise GameFileError(
                f"{self._source.key}: {path} could not be started by TextWorld "
                f"({type(exc).__name__}: {exc}); regenerate it {self._source.fix}"
            ) from exc
        # The admissible commands and the objective come from the .json, the game text from the
        # .z8: a .json from another game would silently offer commands this story does not know.
        if _squash(game_state["objective"]) not in _squash(game_state["feedback"]):
            raise GameFileError(
                f"{self._source.key}: {path} does not match its metadata file "
                f"{path.with_suffix('.json').name} (the game's opening text lacks the objective "
                f"stored there); regenerate both files {self._source.fix}"
            )

    def _observe(self, game_state: textworld.GameState) -> Observation:
        self._candidates, self._dropped = action_slots(game_state["admissible_commands"], self.max_actions, _META_COMMANDS)
        parts = [game_state[key].strip() for key in ("objective", "description", "inventory")]
        parts.append(f"Score: {game_state['score']} of {game_state['max_score']}.")
        return {"state": "\n\n".join(parts), "candidates": self._candidates}

    def _info(self, game_state: textworld.GameState) -> Info:
        return {
            "won": bool(game_state["won"]),
            "lost": bool(game_state["lost"]),
            "score": game_state["score"],
            "max_score": game_state["max_score"],
            "steps": self._steps,
            "candidates_truncated": self._dropped,
            "feedback": game_state["feedback"],
        }


def _check_game_file(path: Path, source: _Source) -> None:
    """Reject, with a specific fix, every file that would fail later or kill the process."""
    where = f"{source.key}: {path}"
    if not path.is_file():
        raise GameFileError(f"{where} does not exist; fix the path {source.fix}")
    if path.suffix != GAME_SUFFIX:
        raise GameFileError(
            f"{where} is not a '{GAME_SUFFIX}' file; TextWorld 1.7 plays only the Z-machine games "
            f"it generates ('.ulx' Glulx games need TextWorld < 1.7); give a '{GAME_SUFFIX}' game "
            f"{source.fix}"
        )
    metadata = path.with_suffix(".json")
    if not metadata.is_file():
        raise GameFileError(
            f"{where} has no TextWorld metadata file {metadata.name} next to it (needed for the "
            f"admissible commands and the score); copy it along with the game {source.fix}"
        )
    # Upstream: Jericho's Frotz interpreter calls exit() on an unreadable story file ("Fatal
    # error: Story file read error"), killing the whole Python process, so the Z-machine
    # header and checksum are verified here before the file ever reaches it.
    data = path.read_bytes()
    if len(data) < 64 or data[0] != 8:
        raise GameFileError(
            f"{where} is not a Z-machine version 8 story file; regenerate it {source.fix}"
        )
    length = int.from_bytes(data[0x1A:0x1C], "big") * 8
    checksum = int.from_bytes(data[0x1C:0x1E], "big")
    if length > len(data) or sum(data[0x40:length]) % 0x10000 != checksum:
        raise GameFileError(
            f"{where} is truncated or corrupt (Z-machine checksum mismatch); regenerate it {source.fix}"
        )


def _squash(text: str) -> str:
    # Inform 7 prints the objective's newlines as line breaks, some single quotes as double.
    return " ".join(text.replace('"', "'").split())
