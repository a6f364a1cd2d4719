"""Admissible commands as action slots: the contract every text env shares.

A text env offers its admissible commands as a sorted, de-duplicated tuple capped at
`max_actions` slots (the rest dropped and counted), and an action is the index of one of
them. Policies mask the slots past the candidates, so an index there is a caller's bug.
"""

from __future__ import annotations

import operator
from typing import Iterable, SupportsIndex


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
