"""Gymnasium adapter for a TextWorld game: text observations, indexed command actions.

`TextWorldEnv` plays one compiled TextWorld game (`.z8` plus its `.json` metadata, see
`textworld_games.py`). The agent picks an index into the current list of admissible commands;
the observation is text, turned into arrays downstream by `PriorFeaturesWrapper`.

Observation (a plain dict):
- `state`: objective + current room description + inventory. It deliberately leaves out the
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
`self.np_random`, as gymnasium expects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, SupportsIndex

import gymnasium as gym
import textworld
from gymnasium import spaces

from priorcache.envs.candidates import action_slots, candidate_index, text_observation_space
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


class GameFileError(ValueError):
    """The configured game file (config key `env.game_file`) cannot be played."""


class TextWorldEnv(gym.Env[Observation, int]):
    """One TextWorld game as a gymnasium env; see the module docstring for observations.

    Actions index `candidates` (`Discrete(max_actions)`); an index past the end of the
    current list raises `ValueError` (policies mask those slots). Reward is the increase in
    the TextWorld score on that step. Terminated when the game is won or lost, truncated after
    `max_steps` steps. `info` (reset and every step): `won`, `lost`, `score`, `max_score`,
    `steps`, `candidates_truncated` (admissible commands dropped from this observation
    because there were more than `max_actions`) and `feedback` (the game's last output).
    """

    metadata = {"render_modes": []}

    def __init__(
        self, game_file: str | Path, *, max_steps: int = 50, max_actions: int = 32
    ) -> None:
        for key, value in (("max_steps", max_steps), ("max_actions", max_actions)):
            if value < 1:
                raise ValueError(f"{key} (config key 'env.{key}') must be >= 1, got {value}")
        self.game_file = Path(game_file)
        self.max_steps = max_steps
        self.max_actions = max_actions
        self.action_space = spaces.Discrete(max_actions)
        self.observation_space = text_observation_space()

        _check_game_file(self.game_file)
        self._game = _start(self.game_file)
        self._candidates: tuple[str, ...] = ()
        self._dropped = 0
        self._score = 0
        self._steps = 0
        self._done = True

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, Info]:
        super().reset(seed=seed)
        game_state = self._live_game().reset()
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


    def _observe(self, game_state: textworld.GameState) -> Observation:
        self._candidates, self._dropped = action_slots(game_state["admissible_commands"], self.max_actions, _META_COMMANDS)
        parts = (game_state[key].strip() for key in ("objective", "description", "inventory"))
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


def _check_game_file(path: Path) -> None:
    """Reject, with a specific fix, every file that would fail later or kill the process."""
    where = f"config key 'env.game_file': {path}"
    if not path.is_file():
        raise GameFileError(f"{where} does not exist; fix the path {_FIX}")
    if path.suffix != GAME_SUFFIX:
        raise GameFileError(
            f"{where} is not a '{GAME_SUFFIX}' file; TextWorld 1.7 plays only the Z-machine games "
            f"it generates ('.ulx' Glulx games need TextWorld < 1.7); give a '{GAME_SUFFIX}' game "
            f"{_FIX}"
        )
    metadata = path.with_suffix(".json")
    if not metadata.is_file():
        raise GameFileError(
            f"{where} has no TextWorld metadata file {metadata.name} next to it (needed for the "
            f"admissible commands and the score); copy it along with the game {_FIX}"
        )
    # Upstream: Jericho's Frotz interpreter calls exit() on an unreadable story file ("Fatal
    # error: Story file read error"), killing the whole Python process, so the Z-machine
    # header and checksum are verified here before the file ever reaches it.
    data = path.read_bytes()
    if len(data) < 64 or data[0] != 8:
        raise GameFileError(
            f"{where} is not a Z-machine version 8 story file; regenerate it {_FIX}"
        )
    length = int.from_bytes(data[0x1A:0x1C], "big") * 8
    checksum = int.from_bytes(data[0x1C:0x1E], "big")
    if length > len(data) or sum(data[0x40:length]) % 0x10000 != checksum:
        raise GameFileError(
            f"{where} is truncated or corrupt (Z-machine checksum mismatch); regenerate it {_FIX}"
        )


def _start(path: Path) -> textworld.Environment:
    """Start the game and reset it once, so a broken file fails here and not mid-training."""
    game = None
    try:
        game = textworld.start(str(path), request_infos=_REQUEST_INFOS)
        game_state = game.reset()
    except Exception as exc:
        if game is not None:
            game.close()
        raise GameFileError(
            f"config key 'env.game_file': {path} could not be started by TextWorld "
            f"({type(exc).__name__}: {exc}); regenerate it {_FIX}"
        ) from exc
    # The admissible commands and the objective come from the .json, the game text from the
    # .z8: a .json from another game would silently offer commands this story does not know.
    if _squash(game_state["objective"]) not in _squash(game_state["feedback"]):
        game.close()
        raise GameFileError(
            f"config key 'env.game_file': {path} does not match its metadata file "
            f"{path.with_suffix('.json').name} (the game's opening text lacks the objective stored "
            f"there); regenerate both files {_FIX}"
        )
    return game


def _squash(text: str) -> str:
    # Inform 7 prints the objective's newlines as line breaks, some single quotes as double.
    return " ".join(text.replace('"', "'").split())
