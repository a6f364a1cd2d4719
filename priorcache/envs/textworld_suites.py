"""TextWorld game suites: a family of generated games at one level, split into train and eval games.

`suite_games(cfg, games_dir, role)` returns the compiled games (`.z8` plus `.json` side by side)
of the train split (`role="train"`, `env.suite.train_games` games) or of the held-out eval split
(`role="eval"`, `env.suite.eval_games` games), generating only the games not on disk yet, with
the same atomic install as single games (`textworld_games.install_game`). Generation is offline
(TextWorld ships its own Inform 7 compiler) and deterministic: the same family, level and game
seed give the same game on any machine. The files themselves can differ between two Python
processes: the challenge generators iterate over sets of strings, whose order depends on
Python's per-process hash seed, which reorders a list of grammar names in the `.json` and, for
cooking, the wrong-cooking losing conditions in the `.z8`; the games play identically.
`TextWorldEnv(games)` plays such a list, one game per episode.

Games come from TextWorld 1.7's own challenge generators (`textworld.challenges`), with their
own quests and rewards (no dense-reward rewrite as in `textworld_games.py`: the reward structure
is part of what each challenge tests). `level` picks the challenge settings:

=============== ===== ============================================= =========== ======= ==========
family          level TextWorld settings                            walkthrough max     candidates
                                                                                reward  (most seen)
=============== ===== ============================================= =========== ======= ==========
simple          1     rewards=dense, goal=detailed                  8-12        7-10    31
simple          2     rewards=balanced, goal=brief                  8-12        3-4     31
simple          3     rewards=sparse, goal=brief                    8-12        1       31
cooking         1     recipe=1, take=1, go=1                        3           3       41
cooking         2     recipe=2, take=2, go=6, open                  4-8         4       46
cooking         3     recipe=3, take=3, go=9, open, cook            11-21       8       63
coin_collector  1     level=5   (chain of 5 rooms)                  5           1       5
coin_collector  2     level=110 (chain of 10 rooms + 10 dead ends)  10          1       6
coin_collector  3     level=215 (chain of 15 rooms + 30 dead ends)  15          1       7
=============== ===== ============================================= =========== ======= ==========

Measured on the 8 train and 4 eval games of suite seed 1: walkthrough is the length of
TextWorld's shortest winning command sequence (`policy_commands`; all fit the default
`env.max_steps` 50), max reward the game's `max_score` (every point is a quest of the challenge),
candidates the most admissible commands in a state along the walkthrough. Generating a game
takes ~1-1.5 s (plus ~1.5 s once per process to load TextWorld's data).

- simple: one fixed house; the player escapes a locked bedroom (key in a chest or trunk), finds
  a food item (fridge, couch or garden) and puts it on the stove. Games differ only in where the
  key and the food are and which food it is. `rewards` says which sub-goals pay a point; `goal`
  is the objective shown: `detailed` spells out the steps, `brief` only names the food
  ("The dinner is almost ready! It's only missing a grilled apple."). TextWorld's `goal=none` is
  not used: the objective would then only be in the note's text, which is feedback to
  `examine note`, and `TextWorldEnv` keeps feedback out of the state text. Eval games add
  TextWorld's `test=True`: the food gets a name train games never use (garlic, kiwi, carrot).
  Without it, 3 of 4 eval games of suite seed 1 had the walkthrough of a train game, as there
  are only a few dozen distinct games.
- cooking: the First TextWorld Problems games: find the kitchen and the ingredients, prepare the
  meal, eat it. A point per ingredient taken (and cooked, level 3), one for preparing and one for
  eating the meal. Eating an ingredient, or cooking it the wrong way (level 3), loses the game.
  Cooking games offer many commands (`examine`, `put ... on ...`, `insert ... into ...` for every
  object in reach), the candidates are cut to `env.max_actions` in name order and `take ...`
  sorts late. With the default 32 slots, level 1 stayed winnable (no walkthrough step fell
  outside the candidates in 48 games, suite seeds 1-4), but 3 walkthrough steps at level 2 and 14
  at level 3 (in the 12 games) did, so some of those games could not be won. Use
  `env.max_actions: 64` for cooking levels 2 and 3 (no step fell outside 64).
- coin_collector: a chain of rooms, the coin in the last one, nothing else in the world; 1 point
  for taking the coin, so rewards are sparse at every level. Levels 1xx/2xx add one/two dead-end
  rooms beside every room of the chain. The state text names the room and its exits but not
  where the player came from, so a memoryless policy cannot tell forward from back on its own.

Game seeds: train game `i` (0-based) uses seed `1000 * env.suite.seed + i`, eval game `i` uses
`1000 * env.suite.seed + 500 + i`. So the two splits never share a seed (up to 500 games each),
and no two suite seeds share a game. Different seeds can still give the same gameplay in a
family with few variations (see simple above). Cached names encode family, level and game seed,
e.g. `suite-cooking-l2-s1003.z8` (the seed also tells the split), so suites of different levels
or seeds share one `env.games_dir`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import textworld
from textworld.challenges import coin_collector, cooking, simple
from textworld.generator.game import Game

from priorcache.envs.textworld_games import GAME_SUFFIX, install_game
from priorcache.platform.config import SuiteConfig

ROLES = ("train", "eval")
SEEDS_PER_SUITE = 1000
"""Game seeds reserved for one suite seed: `[1000 * seed, 1000 * seed + 1000)`."""
EVAL_SEED_OFFSET = 500
"""Eval games start at this offset in their suite's seed block (train games at 0)."""
MAX_SUITE_SEED = (2**32 - 1) // SEEDS_PER_SUITE - 1
"""Largest `env.suite.seed`: TextWorld seeds numpy's RandomState, which takes seeds < 2**32."""

_MAKERS: dict[str, Callable[[Mapping[str, Any], textworld.GameOptions], Game]] = {
    "simple": simple.make,
    "cooking": cooking.make,
    "coin_collector": coin_collector.make,
}
# Cooking's `make` reads `recipe_seed` and `split` unconditionally: 0 keeps the recipe of the
# generated ingredients, None draws foods from all of TextWorld's food splits.
_COOKING = {"recipe_seed": 0, "split": None}
LEVEL_SETTINGS: dict[str, dict[int, dict[str, Any]]] = {
    "simple": {
        1: {"rewards": "dense", "goal": "detailed", "test": False},
        2: {"rewards": "balanced", "goal": "brief", "test": False},
        3: {"rewards": "sparse", "goal": "brief", "test": False},
    },
    "cooking": {
        1: {"recipe": 1, "take": 1, "go": 1, **_COOKING},
        2: {"recipe": 2, "take": 2, "go": 6, "open": True, **_COOKING},
        3: {"recipe": 3, "take": 3, "go": 9, "open": True, "cook": True, **_COOKING},
    },
    "coin_collector": {
        1: {"level": 5},
        2: {"level": 110},
        3: {"level": 215},
    },
}
"""TextWorld challenge settings per family and level (see the module docstring)."""
EVAL_SETTINGS: dict[str, dict[str, Any]] = {"simple": {"test": True}}
"""Settings that eval games of a family add: TextWorld's own held-out game distribution."""


def suite_games(cfg: SuiteConfig, games_dir: str | Path, role: str) -> list[Path]:
    """The `.z8` games of split `role` ("train" or "eval") of the suite `cfg`,
    generated under `games_dir` where not cached yet; in game-seed order. The whole of `cfg` is
    checked before anything is generated (ValueError naming the `env.suite.*` key)."""
    settings = level_settings(cfg.family, cfg.level)
    seeds = game_seeds(cfg, role)
    if role == "eval":
        settings.update(EVAL_SETTINGS.get(cfg.family, {}))
    make = _MAKERS[cfg.family]
    games = []
    for seed in seeds:
        options = textworld.GameOptions()
        options.seeds = seed
        target = Path(games_dir) / f"suite-{cfg.family}-l{cfg.level}-s{seed}{GAME_SUFFIX}"
        # A fresh settings dict per game: the challenge makers may keep or change it.
        games.append(install_game(target, lambda o, s=dict(settings): make(s, o), options))
    return games


def level_settings(family: Any, level: Any) -> dict[str, Any]:
    """TextWorld's challenge settings for `family` at `level` (a copy; eval games add
    `EVAL_SETTINGS`)."""
    if family not in LEVEL_SETTINGS:
        raise ValueError(
            f"config key 'env.suite.family' must be one of {', '.join(LEVEL_SETTINGS)}, got {family!r}"
        )
    levels = LEVEL_SETTINGS[family]
    if not _is_int(level) or level not in levels:
        raise ValueError(
            f"config key 'env.suite.level' must be one of {', '.join(map(str, levels))}, got {level!r}"
        )
    return dict(levels[level])


def game_seeds(cfg: SuiteConfig, role: str) -> list[int]:
    """The generation seeds of the split `role`; see the module docstring for the derivation.
    Checks the split sizes and the seed of `cfg` (both splits, whatever `role`)."""
    if role not in ROLES:
        raise ValueError(f"suite role {role!r}: choose one of {', '.join(ROLES)}")
    for key in ("train_games", "eval_games"):
        count = getattr(cfg, key)
        if not _is_int(count) or not 1 <= count <= EVAL_SEED_OFFSET:
            raise ValueError(
                f"config key 'env.suite.{key}' must be an integer from 1 to "
                f"{EVAL_SEED_OFFSET}, got {count!r}"
            )
    if not _is_int(cfg.seed) or not 0 <= cfg.seed <= MAX_SUITE_SEED:
        raise ValueError(
            f"config key 'env.suite.seed' must be an integer from 0 to {MAX_SUITE_SEED}, "
            f"got {cfg.seed!r}"
        )
    first = SEEDS_PER_SUITE * cfg.seed + (0 if role == "train" else EVAL_SEED_OFFSET)
    return list(range(first, first + (cfg.train_games if role == "train" else cfg.eval_games)))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
