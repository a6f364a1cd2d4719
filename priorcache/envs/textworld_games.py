"""Seeded, local TextWorld game generation, cached on disk.

`ensure_game(spec, games_dir)` returns the compiled game for a `GameSpec`, generating it
with TextWorld's Python API only when it is not on disk yet. Generation is offline (TextWorld
ships its own Inform 7 compiler) and deterministic: the same spec gives the same game on any
machine. A game is two files that must stay together: `<key>.z8` (the Z-machine story the
interpreter runs) and `<key>.json` (TextWorld's game metadata, needed for admissible commands,
scores and the walkthrough).

Rewards are made dense: TextWorld's generator gives one quest worth 1 point for the whole
walkthrough, so a random agent sees no signal until it wins. We add one optional quest per
walkthrough prefix (1 point each, awarded once), so every step of progress along the
walkthrough earns a point and `max_score` equals the walkthrough length (minus any prefix
that already holds at the start, see `_progress_quests`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import textworld
from textworld.generator import QuestGenerationError, compile_game, make_game
from textworld.generator.game import Event, Game, Quest

GAME_SUFFIX = ".z8"
"""TextWorld 1.7 compiles to Z-machine v8 only (Glulx `.ulx` support was removed)."""


class GameGenerationError(ValueError):
    """TextWorld could not generate a game for a `GameSpec`; the message says what to change."""


@dataclass(frozen=True)
class GameSpec:
    """What to generate: the world and quest sizes and the seed. Immutable and hashable."""

    world_size: int = 3
    """Number of rooms. More rooms add `go ...` moves and states between the player and the goal."""
    nb_objects: int = 6
    """Minimum number of objects; the quest may need more, the rest are distractors.
    Each object adds `take/drop/examine/...` candidates to every state it is visible in."""
    quest_length: int = 4
    """Number of actions in the winning walkthrough; with dense rewards, also the maximum score
    (one less for each walkthrough prefix already achieved at the start)."""
    seed: int = 1
    """Generation seed: the same spec (seed included) gives the same game."""

    def __post_init__(self) -> None:
        minimums = {"world_size": 1, "nb_objects": 0, "quest_length": 1, "seed": 0}
        for name, minimum in minimums.items():
            value = getattr(self, name)
            if not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"GameSpec.{name} (config key 'env.game.{name}') must be an integer "
                    f">= {minimum}, got {value!r}"
                )

    @property
    def key(self) -> str:
        """Stable short id, also the cached file name, e.g. `tw-w2-o4-q2-s1`."""
        return f"tw-w{self.world_size}-o{self.nb_objects}-q{self.quest_length}-s{self.seed}"


def game_path(spec: GameSpec, games_dir: Path) -> Path:
    """Where `ensure_game` keeps the compiled game of `spec` (whether or not it exists yet)."""
    return Path(games_dir) / f"{spec.key}{GAME_SUFFIX}"


def ensure_game(spec: GameSpec, games_dir: Path) -> Path:
    """The compiled game file for `spec` under `games_dir`, generated only if not cached
    (see `install_game` for how a game is installed safely)."""
    return install_game(
        game_path(spec, games_dir), lambda options: _make_dense_game(spec, options), _options(spec)
    )


def install_game(
    target: Path, make: Callable[[textworld.GameOptions], Game], options: textworld.GameOptions
) -> Path:
    """`target` (a `.z8` path), generating it with `make(options)` only if it is not cached.

    Generation writes into a temporary folder beside `target` and then renames the files
    into place, the `.z8` last: an interrupted generation leaves no partial game (a killed
    process may leave a hidden `.<name>-...` temp folder, which is ignored), and a game counts
    as cached only when both its `.z8` and `.json` exist. Concurrent callers (several
    env runners on one node) may each generate the game; generation is deterministic and the
    renames are atomic, so whichever finishes last installs an identical game. `options.path`
    is set here, to a file in the temporary folder.
    """
    target = Path(target)
    metadata = target.with_suffix(".json")
    if target.is_file() and metadata.is_file():
        return target

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.stem}-", dir=target.parent))
    try:
        options.path = str(tmp_dir / target.name)
        built = Path(compile_game(make(options), options))
        os.replace(built.with_suffix(".json"), metadata)
        os.replace(built, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return target


def _options(spec: GameSpec) -> textworld.GameOptions:
    options = textworld.GameOptions()
    options.nb_rooms = spec.world_size
    options.nb_objects = spec.nb_objects
    options.quest_length = spec.quest_length
    options.seeds = spec.seed
    return options


def _make_dense_game(spec: GameSpec, options: textworld.GameOptions) -> Game:
    try:
        game = make_game(options)
    except QuestGenerationError as exc:
        raise GameGenerationError(
            f"TextWorld found no quest for {spec}: {exc}. Lower 'env.game.quest_length', raise "
            "'env.game.world_size'/'env.game.nb_objects', or try another 'env.game.seed'"
        ) from exc
    # Assigning `quests` directly (not through `Game(...)`) keeps the objective text and the
    # walkthrough that TextWorld derived from the main quest alone.
    game.quests = _progress_quests(game) + game.quests
    return game


def _progress_quests(game: Game) -> tuple[Quest, ...]:
    """One optional 1-point quest per proper prefix of the walkthrough.

    A prefix quest triggers when the postconditions of its last action hold (e.g. the
    player is in the room that `go south` leads to) and is awarded at most once, so undoing
    and redoing a step earns nothing. Prefixes whose condition already holds at the start
    (e.g. `go south` back into the start room) are skipped: they would pay for any first move.
    Optional quests do not gate winning, which still needs the main quest only; a player who
    wins by another route may skip some prefix points, so a win can score below `max_score`.
    """
    # `make_game` builds one quest (nb_parallel_quests=1) with one winning event.
    (main,) = game.quests
    (event,) = main.win_events
    quests = []
    for i in range(1, len(event.actions)):
        prefix = Event(actions=event.actions[:i], commands=event.commands[:i])
        if not prefix.is_triggering(game.world.state):
            quests.append(
                Quest(win_events=[prefix], reward=1, optional=True, commands=prefix.commands)
            )
    return tuple(quests)
