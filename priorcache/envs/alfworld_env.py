"""Gymnasium adapter for real ALFWorld text games (TextWorld's PDDL engine), and their splits.

`AlfworldEnv` plays ALFWorld games (`game.tw-pddl`, see `/work/shared/data/alfworld/README.md`)
with the same contract as `TextWorldEnv`: the agent picks an index into the current list of
admissible commands, the observation is text, turned into arrays downstream by
`PriorFeaturesWrapper`. Each `reset()` picks one game of the pool with the env's seeded
`np_random` (or the one named by `options={"game_index": i}`).

Observation (a plain dict):
- `state`: the task, where the agent is, what it carries, what it has changed so far, and the
  feedback to the last command, e.g.

      Your task is to: put a cool apple in countertop.
      You are at the fridge 1. You are carrying the cool apple 1.
      The fridge 1 is open.
      You have looked in/on: countertop 1, fridge 1, microwave 1.

      You cool the apple 1 using the fridge 1.

  At the start, "where" is the game's opening overview of the room (its receptacles) and
  there is no feedback yet.
  Why not ALFWorld's own observation (the feedback alone): the same feedback ("You pick up the
  apple 1 from the countertop 1.", "You are not carrying anything.") comes with many candidate
  sets, because it says nothing about location, inventory or progress. Measured with a random
  policy on valid_seen, the raw feedback had 1.6 distinct candidate sets per distinct text (2.8
  when episodes revisit the same games); this state text has 1.00 (1.002). The prior cache keys
  on (state text, candidate set), so an ambiguous text splits into many cache entries and gives
  the LLM a prompt that cannot tell the states apart.
  The lines before the feedback are tracked from the commands played, which is exact because
  only admissible commands are played and each always succeeds: `go to R` sets the location;
  `take O from R` / `move O to R` set what is carried and where each moved object now is;
  `heat/cool/clean O with R` and `slice O with K` make O hot/cool/clean/sliced; `open R` /
  `close R` say which receptacles are open (all of them: receptacles can share a location, and
  a neighbour's door decides what can be taken); `use L` turns a lamp on for good (ALFWorld's
  `isToggled` never reverts).
  The searcher's memory comes from the feedback: "You have looked in/on: ..." lists the
  receptacles whose contents the agent has been shown (a closed one counts once opened), and
  "You saw the X in/on the R." keeps where it last saw each object of a class the task names
  (the task "look at book under the desklamp" keeps books and desklamps, not the pens beside
  them), until it takes it. ALFWorld's handcoded expert keeps the same memory (its receptacles
  still to check, and where it saw each object class); without it the next receptacle to search
  cannot be read from the text, and a greedy prior fine-tuned on the expert revisited
  receptacles (1 of 10 valid_seen games won). The price is fewer exact repeats for the cache.
  These facts are written in a fixed order (sorted by name), so
  two paths to the same game state give the same text. It stays an observation, not the full
  game state: what else lies in receptacles is only known from the feedback at the moment the
  agent looks, and once the agent has moved, games that share a task text (20 of the 140 valid_seen
  games, 46 of the 200 valid_train ones) in different rooms can show the same text with
  different `go to` candidates.
- `candidates`: the admissible commands, sorted and deduplicated, at most `max_actions`,
  without `help` (it prints the command list the candidates already are). `look`, `inventory`
  and `examine ...` are kept although they change nothing the game reads (their only effect,
  `checked`, is in no precondition and no goal): they are ALFWorld's standard action set, and
  the handcoded expert's plans start with `look`.

Reward is ALFWorld's sparse reward: 1.0 on the step that wins, else 0.0 (`score` 0 or 1,
`max_score` 1). Games are never lost (the PDDL engine always reports `lost` false), so episodes
end when won (terminated) or after `max_steps` steps (truncated).

TextWorld runs the PDDL games in this process, each env with its own copy of fast-downward's
library, so there is no interpreter to restart: the env keeps one TextWorld environment, loads
a new game into it only when the game changes, and resets it otherwise (measured: ~0.5 s to
reset the same game, ~1-2 s to load another one, ~40 ms a step).

`alfworld_games(split_dir)` lists a split's playable games; `alfworld_data_dir()` finds the
data; `start_alfworld_game` is the one place the TextWorld environment is built, with ALFWorld's
wrappers (and, for demonstrations, its handcoded expert).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, SupportsIndex

import gymnasium as gym
from gymnasium import spaces

from priorcache.envs.candidates import (
    action_slots,
    candidate_index,
    game_index,
    text_observation_space,
)

if TYPE_CHECKING:
    import textworld

Observation = dict[str, Any]
"""`{"state": str, "candidates": tuple[str, ...]}`."""
Info = dict[str, Any]

ALFWORLD_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "alfworld"
"""Default data folder (split folders inside): `shared/data/alfworld` next to the repository."""
DATA_ENV_VAR = "PRIORCACHE_ALFWORLD_DATA"
"""Environment variable that overrides `ALFWORLD_DATA` (config key `env.alfworld.data_dir` wins)."""
GAME_FILE_NAME = "game.tw-pddl"
"""The game of one ALFWorld trial folder."""
TRAJ_DATA_NAME = "traj_data.json"
"""The trial's task record next to its game (task type and parameters, read by the expert)."""

# Only the meta command: see the module docstring for why look/inventory/examine stay.
_DROPPED_COMMANDS = frozenset({"help"})
_GAME_KEYS = ("pddl_domain", "grammar", "pddl_problem")
_TASK_PREFIX = "Your task is to:"
# Words ALFWorld's own game collector rejects in a trial's path (objects it cannot simulate).
_UNSUPPORTED_PATH_WORDS = ("movable", "Sliced")
_SPLIT_KEYS = "'env.alfworld.train_split' / 'env.alfworld.eval_split'"
_DATA_FIX = (
    f"set config key 'env.alfworld.data_dir' (or ${DATA_ENV_VAR}) to the folder holding the "
    "ALFWorld split folders"
)



class AlfworldGameError(ValueError):
    """An ALFWorld game or split (config keys `env.alfworld.*`) cannot be played."""


def alfworld_data_dir(data_dir: str | Path = "") -> Path:
    """The ALFWorld data folder: `data_dir` if given, else $PRIORCACHE_ALFWORLD_DATA, else
    `ALFWORLD_DATA`; absolute. Not checked here: `alfworld_games` says what is missing."""
    chosen = data_dir or os.environ.get(DATA_ENV_VAR) or ALFWORLD_DATA
    return Path(chosen).expanduser().resolve()


def alfworld_games(
    split_dir: str | Path, playable_only: bool = True, *, key: str | None = None
) -> list[Path]:
    """The `game.tw-pddl` files of one split folder, sorted by path.

    With `playable_only`, keeps the games ALFWorld's own game collector keeps: the trial has its
    `traj_data.json`, `solvable` is true in the game file and the trial's path has neither
    `movable` nor `Sliced` (18 of the 47 unsolvable valid_seen games do not even load in
    alfworld 0.4.2's engine). `key` names the config key that chose this split, for the error
    raised when the folder is missing or has no (playable) game.
    """
    split_dir = Path(split_dir)
    keys = f"config key '{key}'" if key else f"config keys {_SPLIT_KEYS}"
    where = f"{keys}: ALFWorld split folder {split_dir}"
    if not split_dir.is_dir():
        found = split_dir.parent.glob(f"*/*/*/{GAME_FILE_NAME}")
        splits = sorted({game.parents[2].name for game in found})
        choices = f"choose one of {', '.join(splits)}" if splits else _DATA_FIX
        raise AlfworldGameError(f"{where} does not exist; {choices}")
    games = sorted(split_dir.rglob(GAME_FILE_NAME))
    if playable_only:
        games = [game for game in games if _unplayable_reason(game, split_dir) is None]
    if not games:
        raise AlfworldGameError(
            f"{where} holds no {'playable ' if playable_only else ''}'{GAME_FILE_NAME}' game; "
            f"choose a split folder of ALFWorld games or {_DATA_FIX}"
        )
    return games


def start_alfworld_game(game_file: str | Path, *, expert: bool = False) -> textworld.Environment:
    """A TextWorld environment playing `game_file` the way alfworld 0.4.2 does.

    Wrappers: `AlfredDemangler(shuffle=False)` (readable, stable names: "apple 1", not PDDL
    ids), `AlfredInfos` (the game file in `extra.gamefile`). With `expert`, also the handcoded
    expert (`AlfredExpert`), whose next command is `state["extra.expert_plan"][0]` after each
    reset and step; it draws from Python's global `random`, so seed that for reproducible
    plans. The expert costs ~20-40 ms a step, which is why plain play leaves it out. The game is
    loaded but not reset. Wrapper instances are built per call: they keep per-game state.
    Call the returned environment's `load`/`reset` inside `keeping_argv()`.
    """
    import textworld
    from alfworld.agents.environment import alfred_tw_env as alfred

    wrappers: list[Any] = [alfred.AlfredDemangler(shuffle=False), alfred.AlfredInfos]
    if expert:
        # Upstream: AlfredTWEnv.init_env calls AlfredExpert(expert_type), which lands in the
        # `env` parameter; the expert type must go by keyword.
        wrappers.append(alfred.AlfredExpert(expert_type="handcoded"))
    infos = textworld.EnvInfos(admissible_commands=True, won=True, lost=True, feedback=True)
    with keeping_argv():
        return textworld.start(str(game_file), request_infos=infos, wrappers=wrappers)


@contextmanager
def keeping_argv() -> Iterator[None]:
    """Restore `sys.argv` on exit. Upstream: fast_downward's PDDL translator, which TextWorld
    runs on every game load and reset, sets `sys.argv = ["translate.py", "domain", "task"]`
    and leaves it so, which breaks anything in the process that reads the arguments later."""
    argv = sys.argv
    try:
        yield
    finally:
        sys.argv = argv


@dataclass
class _Progress:
    """What the agent changed in the current game, tracked from the commands it played."""

    overview: str = ""
    """The game's opening view of the room, which describes where the agent is at the start."""
    location: str | None = None
    """Receptacle the agent stands at; None at the start (in the middle of the room)."""
    carrying: str | None = None
    """The object in the agent's hands (ALFWorld agents hold at most one)."""
    placed: dict[str, str] = field(default_factory=dict)
    """Object -> receptacle, for objects the agent has put somewhere and not taken again."""
    properties: dict[str, set[str]] = field(default_factory=dict)
    """Object -> {"hot", "cool", "clean", "sliced"} it has been given."""
    opened: set[str] = field(default_factory=set)
    """Receptacles the agent has opened and not closed again."""
    switched_on: set[str] = field(default_factory=set)
    """Objects the agent has used (turned on); they stay on for the goal check."""
    goal_words: frozenset[str] = frozenset()
    """The task sentence's words: objects of these classes are remembered where they were seen."""
    looked_in: set[str] = field(default_factory=set)
    """Receptacles whose contents the agent has seen (a closed one counts once opened)."""
    seen: dict[str, str] = field(default_factory=dict)
    """Object of a class the task names -> receptacle it was last seen in/on (not moved since)."""

    def apply(self, command: str) -> None:
        """Update from a command that the game accepted (every admissible command succeeds)."""
        for pattern, update in _UPDATES:
            match = pattern.fullmatch(command)
            if match:
                update(self, *match.groups())
                return

    def observe(self, feedback: str) -> None:
        """Remember what the game's feedback shows inside receptacles."""
        for match in _CONTENTS.finditer(feedback):
            receptacle = match["on"] or match["inside"]
            self.looked_in.add(receptacle)
            for obj in _OBJECT.findall(match["objects"]):
                if obj.split()[0] in self.goal_words and obj not in self.placed:
                    self.seen[obj] = receptacle

    def describe(self) -> str:
        # At the start the agent is nowhere in particular, and the opening overview (the room's
        # receptacles) is what tells this room from another room with the same task.
        where = f"You are at the {self.location}." if self.location else self.overview
        held = f"the {self._name(self.carrying)}" if self.carrying else "nothing"
        lines = [f"{where} You are carrying {held}."]
        facts = [f"The {self._name(o)} is in/on the {r}." for o, r in sorted(self.placed.items())]
        # All open receptacles, not only the current one: receptacles can share a location
        # (drawer 6 and drawer 7), and what is open there decides what can be taken.
        facts += [f"The {r} is open." for r in sorted(self.opened)]
        facts += [f"The {o} is on." for o in sorted(self.switched_on)]
        # The searcher's memory (ALFWorld's expert keeps the same): where it has looked, and
        # where it saw the objects the task names. Without it a policy reading this text cannot
        # tell a fresh receptacle from one already searched, and revisits.
        facts += [f"You saw the {self._name(o)} in/on the {r}." for o, r in sorted(self.seen.items())]
        if facts:
            lines.append(" ".join(facts))
        if self.looked_in:
            lines.append(f"You have looked in/on: {', '.join(sorted(self.looked_in))}.")
        return "\n".join(lines)

    def _name(self, obj: str) -> str:
        properties = self.properties.get(obj, set())
        return " ".join([p for p in ("hot", "cool", "clean", "sliced") if p in properties] + [obj])

    def _go(self, receptacle: str) -> None:
        self.location = receptacle

    def _take(self, obj: str, receptacle: str) -> None:
        self.carrying = obj
        self.placed.pop(obj, None)
        self.seen.pop(obj, None)

    def _put(self, obj: str, receptacle: str) -> None:
        self.carrying = None
        self.placed[obj] = receptacle

    def _process(self, verb: str, obj: str, tool: str) -> None:
        gained, lost = _PROCESS_EFFECTS[verb]
        properties = self.properties.setdefault(obj, set())
        properties.add(gained)
        properties.difference_update(lost)

    def _open(self, receptacle: str) -> None:
        self.opened.add(receptacle)

    def _close(self, receptacle: str) -> None:
        self.opened.discard(receptacle)

    def _use(self, obj: str) -> None:
        self.switched_on.add(obj)


# What ALFWorld's feedback says a receptacle holds: "On the desk 1, you see a pen 1, and a
# book 2." when arriving at (or examining) an open surface, "The drawer 1 is open. In it, you see
# nothing." when arriving at or opening a container. Names are "<class> <number>".
_CONTENTS = re.compile(
    r"(?:On the (?P<on>\w+ \d+), you see|The (?P<inside>\w+ \d+) is open\. In it, you see)"
    r" (?P<objects>[^.]*)\."
)
_OBJECT = re.compile(r"\ban? (\w+ \d+)")
# Property an object gains from each processing verb, and those it loses (alfred.pddl: heating
# makes an object not cool, cooling makes it not hot).
_PROCESS_EFFECTS = {
    "heat": ("hot", ("cool",)),
    "cool": ("cool", ("hot",)),
    "clean": ("clean", ()),
    "slice": ("sliced", ()),
}
# Command templates of alfworld 0.4.2's grammar (alfred.twl2) that change what `_Progress`
# tracks; `put O in/on/into R` is the pre-0.4 dialect of `move O to R`. Names never contain
# " from ", " to " or " with ", so the lazy groups split commands unambiguously.
_UPDATES = (
    (re.compile(r"go to (.+)"), _Progress._go),
    (re.compile(r"take (.+?) from (.+)"), _Progress._take),
    (re.compile(r"move (.+?) to (.+)"), _Progress._put),
    (re.compile(r"put (.+?) (?:in|on|into) (.+)"), _Progress._put),
    (re.compile(r"(heat|cool|clean|slice) (.+?) with (.+)"), _Progress._process),
    (re.compile(r"open (.+)"), _Progress._open),
    (re.compile(r"close (.+)"), _Progress._close),
    (re.compile(r"use (.+)"), _Progress._use),
)


class AlfworldEnv(gym.Env[Observation, int]):
    """A pool of ALFWorld games as a gymnasium env; see the module docstring for observations.

    Actions index `candidates` (`Discrete(max_actions)`); an index past the end of the current
    list raises `ValueError` (policies mask those slots). `reset(seed=...)` picks the game with
    `np_random`, so a seed always selects the same game; `reset(options={"game_index": i})`
    plays `game_files[i]`. `info` (reset and every step): `won`, `lost`, `score`, `max_score`,
    `steps`, `candidates_truncated` (admissible commands dropped from this observation because
    there were more than `max_actions`) and `feedback` (the game's last output). The game being
    played is `game_file`.
    """

    metadata = {"render_modes": []}

    def __init__(
        self, game_files: Sequence[str | Path], *, max_steps: int = 50, max_actions: int = 64
    ) -> None:
        for key, value in (("max_steps", max_steps), ("max_actions", max_actions)):
            if value < 1:
                raise ValueError(f"{key} (config key 'env.{key}') must be >= 1, got {value}")
        if isinstance(game_files, (str, Path)):
            raise TypeError(
                "AlfworldEnv takes a sequence of game files; put a single one in a list"
            )
        self.game_files = tuple(Path(game) for game in game_files)
        if not self.game_files:
            raise AlfworldGameError(
                f"AlfworldEnv got no game files; check config keys {_SPLIT_KEYS} and "
                "'env.alfworld.max_games' (0 = all games of the split)"
            )
        for game in self.game_files:
            reason = _unplayable_reason(game, game.parent.parent.parent)
            if reason is not None:
                raise AlfworldGameError(_game_error(game, reason))
        self.max_steps = max_steps
        self.max_actions = max_actions
        self.action_space = spaces.Discrete(max_actions)
        self.observation_space = text_observation_space()

        self.game_file: Path | None = None
        """The game being played (None before the first reset)."""
        self._game: textworld.Environment | None = None
        self._closed = False
        self._goal = ""
        self._progress = _Progress()
        self._candidates: tuple[str, ...] = ()
        self._dropped = 0
        self._won = False
        self._steps = 0
        self._done = True

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, Info]:
        if self._closed:
            raise RuntimeError("AlfworldEnv is closed; create a new one")
        super().reset(seed=seed)
        index = game_index(options, len(self.game_files), self.np_random)
        game = self._load(self.game_files[index])
        with keeping_argv():
            game_state = game.reset()
        intro = game_state["feedback"]
        start = intro.find(_TASK_PREFIX)
        if start < 0:
            raise AlfworldGameError(_game_error(
                self.game_files[index],
                f"has no task description ('{_TASK_PREFIX} ...' is missing from its opening text)",
            ))
        # The games' task sentences end in "..": one full stop is enough for a prompt.
        self._goal = re.sub(r"\.+$", ".", " ".join(intro[start:].split()))
        # The opening is a banner, the room overview and the task.
        self._progress = _Progress(
            overview=intro[:start].strip().split("\n\n")[-1],
            goal_words=frozenset(re.findall(r"\w+", self._goal.lower())),
        )
        self._won = False
        self._steps = 0
        self._done = False
        return self._observe(game_state, feedback=""), self._info(game_state)

    def step(self, action: SupportsIndex) -> tuple[Observation, float, bool, bool, Info]:
        if self._done or self._game is None:
            raise RuntimeError(
                "AlfworldEnv.step() needs reset() first, and again after an episode ends"
            )
        command = self._candidates[candidate_index(action, len(self._candidates))]
        game_state, _, _ = self._game.step(command)
        self._progress.apply(command)
        self._progress.observe(game_state["feedback"])
        self._steps += 1
        # Upstream: once won, ALFWorld's env keeps answering with its last output until it is
        # told it is done; ending the episode on `won` never steps past the win.
        self._won = bool(game_state["won"])
        truncated = not self._won and self._steps >= self.max_steps
        self._done = self._won or truncated
        reward = 1.0 if self._won else 0.0
        return self._observe(game_state), reward, self._won, truncated, self._info(game_state)

    def close(self) -> None:
        """End the game (idempotent); `reset()` is not possible afterwards."""
        self._closed = True
        if self._game is not None:
            # The engine's copy of libdownward.so (34 MB) stays loaded until the process exits:
            # unloading it (fast_downward.close_lib) makes the process crash at exit once two
            # copies were ever loaded, as the copies share C++ singletons.
            self._game.close()
            self._game = None
            self.game_file = None

    def _load(self, game_file: Path) -> textworld.Environment:
        if self._game is not None and game_file == self.game_file:
            return self._game
        try:
            if self._game is None:
                self._game = start_alfworld_game(game_file)
            else:
                with keeping_argv():
                    self._game.load(str(game_file))
        except Exception as exc:
            # A failed load leaves the engine half-switched: load again on the next reset.
            self.game_file = None
            raise AlfworldGameError(
                _game_error(game_file, f"could not be loaded ({type(exc).__name__}: {exc})")
            ) from exc
        self.game_file = game_file
        return self._game

    @staticmethod
    def cache_key(observation: Observation) -> str:
        """What a keyed prior cache matches exactly (`prior.cache.mode=keyed`): the task and the
        feedback to the last command (none at the start). The rest of the state is gated on what
        the served command names. Without the task the key saved more but served close calls made
        for other tasks, which cost wins (docs/cache.md, "Close calls keep to their task")."""
        head, _, feedback = observation["state"].partition("\n\n")
        task = head.partition("\n")[0]
        return f"{task}\n\n{feedback}"

    def _observe(self, game_state: textworld.GameState, feedback: str | None = None) -> Observation:
        self._candidates, self._dropped = action_slots(game_state["admissible_commands"], self.max_actions, _DROPPED_COMMANDS)
        last = (game_state["feedback"] if feedback is None else feedback).strip()
        state = f"{self._goal}\n{self._progress.describe()}"
        return {"state": f"{state}\n\n{last}" if last else state, "candidates": self._candidates}

    def _info(self, game_state: textworld.GameState) -> Info:
        return {
            "won": self._won,
            "lost": bool(game_state["lost"]),
            "score": int(self._won),
            "max_score": 1,
            "steps": self._steps,
            "candidates_truncated": self._dropped,
            "feedback": game_state["feedback"],
        }


def _unplayable_reason(game_file: Path, split_dir: Path) -> str | None:
    """Why `game_file` cannot be played (None if it can); `split_dir` scopes the path check."""
    if not game_file.is_file():
        return "does not exist"
    if game_file.name != GAME_FILE_NAME:
        return f"is not an ALFWorld game (expected a file named '{GAME_FILE_NAME}')"
    try:
        relative = game_file.relative_to(split_dir)
    except ValueError:
        relative = game_file
    if any(word in part for part in relative.parts for word in _UNSUPPORTED_PATH_WORDS):
        return "is a movable- or sliced-object trial, which ALFWorld's text engine does not support"
    if not (game_file.parent / TRAJ_DATA_NAME).is_file():
        return f"has no {TRAJ_DATA_NAME} next to it (the trial's task record the expert reads)"
    try:
        data = json.loads(game_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"is not a readable JSON game file ({type(exc).__name__}: {exc})"
    missing = [key for key in _GAME_KEYS if not isinstance(data, dict) or key not in data]
    if missing:
        return f"lacks the key(s) {', '.join(missing)} of an ALFWorld PDDL game"
    if data.get("solvable") is not True:
        return "is not marked solvable (ALFWorld skips such games; 0.4.2 cannot even load some)"
    return None


def _game_error(game_file: Path, reason: str) -> str:
    return (
        f"ALFWorld game {game_file} {reason}; play the games alfworld_games() lists for the "
        f"split named by config key {_SPLIT_KEYS}, or {_DATA_FIX}"
    )
