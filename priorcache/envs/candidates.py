"""The contract every text env shares: text observations, admissible commands as action slots.

A text env observes `{"state": str, "candidates": tuple[str, ...]}` and offers its
admissible commands as a sorted, de-duplicated tuple capped at `max_actions` slots (the
rest dropped and counted); an action is the index of one of them. Policies mask the slots
past the candidates, so an index there is a caller's bug. An env with several games picks one
per `reset()` with `game_index`.
"""

from __future__ import annotations

import operator
import string
from typing import Iterable, SupportsIndex

import numpy as np
from gymnasium import spaces

_CHARSET = frozenset(string.printable)
_MAX_STATE_CHARS = 16384
_MAX_COMMAND_CHARS = 256


def text_observation_space() -> spaces.Dict:
    """The declared observation space of a text env.

    Text-valued, best effort: gymnasium has no space for variable-length string lists that
    RL libraries batch; `PriorFeaturesWrapper` replaces it with fixed-size arrays.
    """
    return spaces.Dict({
        "state": spaces.Text(_MAX_STATE_CHARS, charset=_CHARSET),
        "candidates": spaces.Sequence(spaces.Text(_MAX_COMMAND_CHARS, charset=_CHARSET), stack=False),
    })


def action_slots(
    commands: Iterable[str], max_actions: int, excluded: frozenset[str] = frozenset()
) -> tuple[tuple[str, ...], int]:
    """(the first `max_actions` sorted distinct commands not in `excluded`, how many were dropped)."""
    ordered = sorted(set(commands) - excluded)
    kept = tuple(ordered[:max_actions])
    return kept, len(ordered) - len(kept)


def candidate_index(action: SupportsIndex, n_candidates: int) -> int:
    """`action` as an index into the current candidates; ValueError saying what is wrong otherwise."""
    try:
        index = operator.index(action)
    except TypeError:
        raise ValueError(f"action must be an integer index, got {action!r}") from None
    if not 0 <= index < n_candidates:
        raise ValueError(
            f"action {index} is not a candidate: this state has {n_candidates} "
            f"(valid indices 0..{n_candidates - 1}); mask the action slots past the candidates"
        )
    return index


def game_index(options: dict | None, n_games: int, np_random: np.random.Generator) -> int:
    """The game a multi-game env plays next: `options["game_index"]` if given (checked), else
    one drawn uniformly with the env's `np_random` (so a reset seed always picks the same game)."""
    options = options or {}
    if "game_index" not in options:
        return int(np_random.integers(n_games))
    index = options["game_index"]
    try:
        index = operator.index(index)
    except TypeError:
        raise ValueError(f"options['game_index'] must be an integer, got {index!r}") from None
    if not 0 <= index < n_games:
        raise ValueError(
            f"options['game_index'] {index} is out of range: this env has "
            f"{n_games} games (valid indices 0..{n_games - 1})"
        )
    return index
