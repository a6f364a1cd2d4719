"""Expert demonstrations on an experiment's training games: `priorcache demos`.

`collect_demos(cfg, ...)` lets the domain's scripted expert (`envs/experts.py`) play the env
that `cfg.env` describes, always in its "train" role (ALFWorld's `env.alfworld.train_split`, a
suite's train games, BabyAI seeds below `eval.seed`), built by the same factory RLlib's env
runners use, so each recorded `state` is exactly the `obs["state"]` the prior sees at play time
and `candidates` exactly `obs["candidates"]`. `write_dataset` writes the folder:

- `demos.jsonl`: one JSON object per step, with exactly the fields of `DemoStep`.
- `card.json`: the numbers of the run (`DemoCard`); `CARD.md`: the same, for people.

Episode `i` (0-based) is reset with seed `seed + i`; in a multi-game env it plays game
`i mod n` (options `game_index`), so the default number of episodes, one per game, plays every
training game once. A single TextWorld game is deterministic, so one episode is its default.
An expert command that is not among the candidates is never recorded nor played, and is
counted: if it changes nothing in the game (`Expert.skip`, e.g. ALFWorld's `help`) the expert
goes on, else it ends the episode (not won). Episodes the expert does not win are left out unless `keep_lost`.

With a `learner` (`priorcache demos --learner`, DAgger) the expert labels the states another
policy visits: at each step it names its command, which is recorded as the step's `action`,
and the command played is the learner's with probability 1 - `beta` (the expert's otherwise);
the expert then follows the played command (`follow`). The learner built in is the Direct-LLM
agent of the config's prior (`GreedyPriorLearner`), so fine-tuning on these steps teaches the
prior to recover from its own mistakes, the states expert-only demonstrations never show. Every
episode is kept: its labels are good whether the rollout was won or not. Only experts that can
follow another player's commands do this (`FOLLOWING_EXPERTS`).

Files are written to temporary names and renamed into place, `demos.jsonl` first and the cards
last, after any old card was removed: an interrupted run leaves either the previous complete
dataset or a `demos.jsonl` without a card, never a card describing a half-written file.
`load_demos(path)` reads `demos.jsonl` back and checks every line.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np

from priorcache.envs.experts import FOLLOWING_EXPERTS, Expert, Info, Observation, expert_for, playable_command
from priorcache.envs.registry import make_text_env
from priorcache.platform.config import ConfigError, ExperimentConfig, LLMConfig, load_config, to_dict

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
DOMAINS: dict[str, str] = {
    "alfworld": "alfworld_ppo_prior.yaml",
    "textworld": "textworld_ppo_prior.yaml",
    "twsuite": "twsuite_ppo_prior.yaml",
    "babyai": "babyai_ppo_prior.yaml",
    "webshop": "webshop_ppo_prior.yaml",
}
"""`priorcache demos <domain>` -> the experiment (under `experiments/`) whose env it plays."""
_DOMAIN_OF_ENV = {"alfworld": "alfworld", "textworld": "textworld", "textworld_suite": "twsuite", "babyai": "babyai",
                  "webshop": "webshop"}
DEMOS_ROOT = Path(".cache") / "demos"
"""Default parent of the dataset folders (git-ignored), one folder per domain."""
DEMOS_FILE = "demos.jsonl"
CARD_JSON = "card.json"
CARD_MD = "CARD.md"
BABYAI_EPISODES = 100
"""Default BabyAI episodes (levels are drawn from seeds, so there is no natural count)."""
WEBSHOP_EPISODES = 300
"""Default WebShop episodes (goals are drawn from seeds; the train split has 327 products)."""
LEARNER_BETA = 0.5
"""Default share of expert steps in a learner rollout: half the steps keep the episode moving
towards the goal, so the learner's mistakes are seen at every stage of the task, not only the first."""


class DemoFileError(ValueError):
    """A demonstrations file is missing or has a malformed line (the message names it)."""


@dataclass(frozen=True)
class DemoStep:
    """One step of an expert episode: what the agent saw, what it could do, what the expert did."""

    domain: str
    """Env family (config key `env.name`): alfworld, textworld, textworld_suite, babyai or webshop."""
    split: str
    """The games it comes from: ALFWorld's train split folder (e.g. valid_train), else "train"."""
    game: str
    """The game played: ALFWorld trial folder in the split, TextWorld game file name, or BabyAI
    `<level>/seed-<seed>`."""
    episode: int
    """Episode number in the run (0-based; its reset seed is the experiment seed plus this)."""
    step: int
    """Step in the episode (0-based)."""
    state: str
    """The env's `obs["state"]` before the action."""
    candidates: tuple[str, ...]
    """The env's `obs["candidates"]` before the action."""
    action: str
    """The expert's command, one of `candidates`."""
    won: bool
    """Whether the expert won this episode (the same on each of its steps)."""


@dataclass
class DemoCard:
    """What a demonstrations run did: written as `card.json` and, for people, `CARD.md`."""

    domain: str
    split: str
    expert: str
    """The expert's description (`envs/experts.py`)."""
    env: dict[str, Any]
    """The env settings played (the relevant keys of the config's `env` section)."""
    games: int
    """Distinct games played."""
    games_available: int
    """Games in the training pool (ALFWorld split after `max_games`, suite train games; 1 for a
    single TextWorld game; 0 for BabyAI, whose levels come from seeds)."""
    episodes: int
    """Episodes played."""
    episodes_won: int
    win_rate: float
    """`episodes_won / episodes`."""
    episodes_kept: int
    """Episodes in `demos.jsonl`."""
    steps: int
    """Lines in `demos.jsonl`."""
    inadmissible: int
    """Expert commands that were not among the candidates: never recorded, each ended its episode."""
    inadmissible_commands: dict[str, int]
    """Those commands, with how often each came."""
    skipped: int
    """Expert commands not among the candidates that change nothing in the game: neither
    recorded nor played, the expert went on."""
    skipped_commands: dict[str, int]
    """Those commands, with how often each came."""
    episodes_dropped: int
    """Episodes not won and left out (0 with `keep_lost`)."""
    steps_dropped: int
    """Recorded steps of the episodes left out."""
    keep_lost: bool
    seconds: float
    """Wall time of the collection."""
    command: str
    """The command that produced the dataset."""
    date: str
    """When the run finished (UTC, ISO 8601)."""
    licence: str
    """Licence of the game data the states come from."""
    notes: list[str] = field(default_factory=list)
    """What a reader should know about this domain's data (e.g. shared eval game)."""
    learner: str = ""
    """The policy that played, labelled by the expert (DAgger); "" when the expert played."""
    beta: float = 1.0
    """Probability that a step plays the expert's command rather than the learner's."""
    learner_steps: int = 0
    """Steps the learner played."""
    learner_agreement: float | None = None
    """Fraction of those where the learner's command was the expert's (None without a learner)."""


class GreedyPriorLearner:
    """The Direct-LLM agent, in process: the candidate the config's prior (`prior.llm`) scores highest.

    The scorer is the LLM replica's own (`PriorScorer`: template, scoring rule, backend, adapter),
    so it picks what `direct_llm` picks in `priorcache eval`, without Ray or the cache.
    """

    def __init__(self, llm: LLMConfig) -> None:
        from priorcache.platform.llm.replica import PriorScorer

        self._scorer = PriorScorer(llm)
        self.description = f"greedy prior (Direct-LLM) of {self._scorer.model_id}, {self._scorer.prompt_version}"

    def __call__(self, state: str, candidates: tuple[str, ...]) -> str:
        return candidates[int(np.argmax(self._scorer.prior([state], [candidates])[0]))]

    def close(self) -> None:
        self._scorer.backend.close()


def resolve_target(target: str) -> tuple[Path, str]:
    """(experiment YAML, domain name) for a `priorcache demos` argument: a domain or a YAML path."""
    if target in DOMAINS:
        return EXPERIMENTS / DOMAINS[target], target
    path = Path(target)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path, ""
    raise ConfigError(
        f"demos: {target!r} is neither a domain nor an experiment YAML; give one of "
        f"{', '.join(DOMAINS)} or the path of a YAML under experiments/"
    )


def collect_demos(
    cfg: ExperimentConfig,
    episodes: int | None = None,
    *,
    keep_lost: bool = False,
    on_episode: Callable[[int, int, bool], None] | None = None,
    learner: Callable[[str, tuple[str, ...]], str] | None = None,
    beta: float = 0.0,
) -> tuple[list[DemoStep], DemoCard]:
    """Play `episodes` expert episodes on the training games of `cfg.env`; (steps kept, card).

    `episodes` None plays the default (see the module docstring). `on_episode(done, total, won)`
    is called after each episode (progress). The card's `command` is left empty. With a
    `learner` ((state, candidates) -> command), it plays with probability 1 - `beta` and the
    expert labels (module docstring); every episode is then kept.
    """
    env_cfg = cfg.env
    if learner is not None:
        _check_learner(env_cfg.name, beta)
        keep_lost = True
    env = make_text_env(env_cfg, "train")
    expert = expert_for(env_cfg.name)
    pool = len(getattr(env.unwrapped, "game_files", ()))
    if episodes is None:
        episodes = {"babyai": BABYAI_EPISODES, "webshop": WEBSHOP_EPISODES, "textworld": 1}.get(env_cfg.name, pool)
    _check_episodes(cfg, episodes)
    split = {"alfworld": env_cfg.alfworld.train_split, "webshop": env_cfg.webshop.train_split}.get(env_cfg.name, "train")
    kept: list[DemoStep] = []
    games: set[str] = set()
    won_count = dropped = steps_dropped = 0
    inadmissible: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    learner_steps = agreed = 0
    start = time.perf_counter()
    try:
        for episode in range(episodes):
            seed = cfg.seed + episode
            obs, info = env.reset(seed=seed, options={"game_index": episode % pool} if pool > 1 else None)
            game = _game_id(env, cfg, seed)
            games.add(game)
            expert.reset(env, obs, info, seed=seed)
            played = _play_episode(env, expert, obs, info, learner, beta, np.random.default_rng(seed))
            won_count += played.won
            learner_steps += played.learner_steps
            agreed += played.agreed
            skipped.update(played.skipped)
            if played.inadmissible is not None:
                inadmissible[played.inadmissible] += 1
            if played.won or keep_lost:
                kept.extend(
                    DemoStep(env_cfg.name, split, game, episode, i, state, candidates, action, played.won)
                    for i, (state, candidates, action) in enumerate(played.steps)
                )
            else:
                dropped += 1
                steps_dropped += len(played.steps)
            if on_episode is not None:
                on_episode(episode + 1, episodes, played.won)
    finally:
        expert.close()
        env.close()
    card = DemoCard(
        domain=env_cfg.name,
        split=split,
        expert=expert.description,
        env=_env_settings(cfg),
        games=len(games),
        games_available=pool,
        episodes=episodes,
        episodes_won=won_count,
        win_rate=round(won_count / episodes, 4),
        episodes_kept=episodes - dropped,
        steps=len(kept),
        inadmissible=sum(inadmissible.values()),
        inadmissible_commands=dict(inadmissible.most_common()),
        skipped=sum(skipped.values()),
        skipped_commands=dict(skipped.most_common()),
        episodes_dropped=dropped,
        steps_dropped=steps_dropped,
        keep_lost=keep_lost,
        seconds=round(time.perf_counter() - start, 1),
        command="",
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        licence=_licence(cfg),
        notes=_notes(cfg),
        learner=getattr(learner, "description", repr(learner)) if learner is not None else "",
        beta=beta if learner is not None else 1.0,
        learner_steps=learner_steps,
        learner_agreement=round(agreed / learner_steps, 4) if learner_steps else None,
    )
    return kept, card


def _check_learner(env_name: str, beta: float) -> None:
    if env_name not in FOLLOWING_EXPERTS:
        raise ConfigError(
            f"demos --learner: the {env_name} expert plays its own path and cannot label the states "
            f"another policy visits; --learner works for {', '.join(FOLLOWING_EXPERTS)}"
        )
    if not 0.0 <= beta < 1.0:
        raise ConfigError(f"demos --beta is {beta}; give the expert's share of the steps, 0 <= beta < 1")


@dataclass
class _Episode:
    """One expert episode as played."""

    steps: list[tuple[str, tuple[str, ...], str]] = field(default_factory=list)
    """(state, candidates, command) of each step played."""
    won: bool = False
    skipped: list[str] = field(default_factory=list)
    """Skipped commands (not candidates, changing nothing), in order."""
    inadmissible: str | None = None
    """The command, not a candidate, that ended the episode; None if the env ended it."""
    learner_steps: int = 0
    """Steps the learner played."""
    agreed: int = 0
    """Of those, steps where its command was the expert's."""


def _play_episode(
    env: gym.Env,
    expert: Expert,
    obs: Observation,
    info: Info,
    learner: Callable[[str, tuple[str, ...]], str] | None = None,
    beta: float = 0.0,
    rng: np.random.Generator | None = None,
) -> _Episode:
    """Let `expert` (reset already) play the episode `env` has just reset to, from `obs`/`info`;
    with a `learner`, the learner plays a step with probability 1 - `beta` (drawn from `rng`)."""
    played = _Episode()
    while True:
        command, skipped = playable_command(expert, obs, info)
        played.skipped += skipped
        if command not in obs["candidates"]:
            played.inadmissible = command
            return played
        candidates = tuple(obs["candidates"])
        played.steps.append((obs["state"], candidates, command))
        choice = command
        if learner is not None and rng.random() >= beta:
            choice = learner(obs["state"], candidates)
            played.learner_steps += 1
            played.agreed += choice == command
            if choice != command:
                expert.follow(choice)
        obs, _, terminated, truncated, info = env.step(candidates.index(choice))
        if terminated or truncated:
            played.won = bool(info["won"])
            return played


def write_dataset(out_dir: str | Path, steps: Sequence[DemoStep], card: DemoCard) -> Path:
    """Write `demos.jsonl`, `card.json` and `CARD.md` into `out_dir` (see the module docstring
    for the order that keeps an interrupted write recognisable); returns `demos.jsonl`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        DEMOS_FILE: "".join(json.dumps(asdict(step), ensure_ascii=False) + "\n" for step in steps),
        CARD_JSON: json.dumps(asdict(card), indent=2, ensure_ascii=False) + "\n",
        CARD_MD: render_card(card),
    }
    for name in (CARD_JSON, CARD_MD):
        (out / name).unlink(missing_ok=True)
    for name, text in texts.items():
        tmp = out / f".{name}.tmp-{os.getpid()}"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out / name)
    return out / DEMOS_FILE


def run_demos(
    target: str,
    overrides: Sequence[str] = (),
    *,
    out: str | Path | None = None,
    episodes: int | None = None,
    keep_lost: bool = False,
    progress: bool = True,
    learner: bool = False,
    beta: float = LEARNER_BETA,
) -> tuple[Path, DemoCard]:
    """`priorcache demos`: resolve `target`, collect, write; (dataset folder, card). With
    `learner`, the config's greedy prior plays and the expert labels (DAgger), into
    `<domain>-learner` by default."""
    experiment, domain = resolve_target(target)
    cfg = load_config(experiment, overrides)
    folder = domain or _DOMAIN_OF_ENV[cfg.env.name]
    out_dir = Path(out) if out else DEMOS_ROOT / (f"{folder}-learner" if learner else folder)

    def report(done: int, total: int, won: bool) -> None:
        if done == total or done % max(1, total // 20) == 0:
            print(f"demos {cfg.env.name}: {done}/{total} episodes", file=sys.stderr, flush=True)

    player = None
    if learner:
        _check_learner(cfg.env.name, beta)
        player = GreedyPriorLearner(cfg.prior.llm)
    try:
        steps, card = collect_demos(cfg, episodes, keep_lost=keep_lost, on_episode=report if progress else None,
                                    learner=player, beta=beta)
    finally:
        if player is not None:
            player.close()
    flags = [*(["--out", str(out)] if out else []), *(["--episodes", str(episodes)] if episodes else []),
             *(["--keep-lost"] if keep_lost else []), *(["--learner", "--beta", str(beta)] if learner else [])]
    card.command = shlex.join(["priorcache", "demos", target, *flags, *overrides])
    write_dataset(out_dir, steps, card)
    return out_dir, card


def load_demos(path: str | Path) -> list[DemoStep]:
    """The steps of a `demos.jsonl` file (or of the one in a dataset folder), every line checked:
    `DemoFileError` names the file, the line and what is wrong."""
    path = Path(path)
    if path.is_dir():
        path = path / DEMOS_FILE
    if not path.is_file():
        raise DemoFileError(f"{path} does not exist; write it with `priorcache demos <domain>`")
    steps = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                steps.append(_parse_step(line))
            except ValueError as err:
                raise DemoFileError(f"{path}, line {number}: {err}") from None
    return steps


_FIELD_TYPES: dict[str, type] = {"domain": str, "split": str, "game": str, "episode": int,
                                 "step": int, "state": str, "candidates": list, "action": str, "won": bool}


def _parse_step(line: str) -> DemoStep:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON ({err})") from None
    if not isinstance(record, dict):
        raise ValueError(f"not a JSON object but {type(record).__name__}")
    expected = [f.name for f in fields(DemoStep)]
    if set(record) != set(expected):
        missing, extra = set(expected) - set(record), set(record) - set(expected)
        raise ValueError(f"fields must be exactly {', '.join(expected)}; missing {sorted(missing)}, "
                         f"unexpected {sorted(extra)}")
    for name, kind in _FIELD_TYPES.items():
        value = record[name]
        # JSON booleans are Python ints: an int field must not accept true/false.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"field {name!r} must be {kind.__name__}, got {value!r}")
    if not record["candidates"] or not all(isinstance(c, str) for c in record["candidates"]):
        raise ValueError("field 'candidates' must be a non-empty list of strings")
    if record["action"] not in record["candidates"]:
        raise ValueError(f"action {record['action']!r} is not one of its candidates")
    if record["episode"] < 0 or record["step"] < 0:
        raise ValueError("fields 'episode' and 'step' must be >= 0")
    return DemoStep(**{**record, "candidates": tuple(record["candidates"])})


def render_card(card: DemoCard) -> str:
    """`CARD.md`: the dataset card."""
    rows = [
        ("domain (env.name)", card.domain), ("split", card.split), ("expert", card.expert),
        ("games played / in the pool", f"{card.games} / {card.games_available or 'seeded levels'}"),
        ("episodes played", card.episodes),
        ("episodes won (win rate)", f"{card.episodes_won} ({card.win_rate:.1%})"),
        ("episodes in the file", card.episodes_kept), ("steps (lines) in the file", card.steps),
        ("expert commands not among the candidates that change nothing (skipped, expert went on)",
         _counts(card.skipped, card.skipped_commands)),
        ("other expert commands not among the candidates (not played, episode ended)",
         _counts(card.inadmissible, card.inadmissible_commands)),
        ("episodes not won, left out (their steps)", f"{card.episodes_dropped} ({card.steps_dropped})"),
        ("collection time", f"{card.seconds:.0f} s"), ("date (UTC)", card.date),
        ("licence of the game data", card.licence),
    ]
    if card.learner:
        rows[2:2] = [
            ("played by (DAgger: the expert labels its states)", card.learner),
            ("steps the expert played (beta)", f"{card.beta:.0%}"),
            ("learner steps; its command was the expert's", f"{card.learner_steps}; {card.learner_agreement:.1%}"
             if card.learner_agreement is not None else card.learner_steps),
        ]
    table = "\n".join(f"| {name} | {str(value).replace('|', '/')} |" for name, value in rows)
    settings = "\n".join(f"- `env.{key}`: `{json.dumps(value)}`" for key, value in card.env.items())
    notes = "".join(f"- {note}\n" for note in card.notes)
    return (
        f"# Expert demonstrations: {card.domain}\n\n"
        f"Produced by `{card.command}`.\n\n"
        f"`{DEMOS_FILE}` holds one JSON object per step with the fields domain, split, game, "
        "episode, step, state, candidates, action, won: `state` and `candidates` are the env's "
        "observation before the step, exactly as the LLM prior sees it, `action` the expert's "
        "command (always one of `candidates`), `won` the episode's outcome. Only training games "
        "are played. Read it with `priorcache.demos.load_demos`.\n\n"
        "| | |\n|---|---|\n"
        f"{table}\n\n## Env settings\n{settings}\n"
        + (f"\n## Notes\n{notes}" if notes else "")
    )


def _counts(total: int, by_command: dict[str, int]) -> str:
    return f"{total}" + "".join(f"; `{command}` x{n}" for command, n in by_command.items())


def _check_episodes(cfg: ExperimentConfig, episodes: int) -> None:
    if episodes < 1:
        raise ConfigError(f"demos: --episodes must be >= 1, got {episodes}; leave it out for the default")
    # BabyAI draws its levels from the reset seeds: stay below the evaluation's seeds.
    if cfg.env.name == "babyai" and cfg.seed + episodes > cfg.eval.seed:
        raise ConfigError(
            f"demos: BabyAI episodes use seeds {cfg.seed}..{cfg.seed + episodes - 1}, which reach "
            f"the held-out evaluation seeds (config key 'eval.seed' = {cfg.eval.seed}); lower "
            "--episodes or 'seed', or raise 'eval.seed'"
        )


def _game_id(env: gym.Env, cfg: ExperimentConfig, seed: int) -> str:
    if cfg.env.name == "babyai":
        return f"{cfg.env.babyai.level}/seed-{seed}"
    if cfg.env.name == "webshop":
        return f"{cfg.env.webshop.train_split}/{env.unwrapped.goal.asin}"
    game_file = env.unwrapped.game_file
    if cfg.env.name == "alfworld":
        # Every ALFWorld game file is named game.tw-pddl: its trial folders name it.
        return "/".join(game_file.parts[-3:-1])
    return game_file.name


_ENV_KEYS = {
    "textworld": ("game", "game_file"),
    "textworld_suite": ("suite", "games_dir"),
    "alfworld": ("alfworld",),
    "babyai": ("babyai",),
    "webshop": ("webshop",),
}


def _env_settings(cfg: ExperimentConfig) -> dict[str, Any]:
    env = to_dict(cfg)["env"]
    return {key: env[key] for key in ("name", *_ENV_KEYS[cfg.env.name], "max_steps", "max_actions")}


def _licence(cfg: ExperimentConfig) -> str:
    if cfg.env.name in ("alfworld", "webshop"):
        from priorcache.envs.alfworld_env import alfworld_data_dir
        from priorcache.envs.webshop_data import webshop_data_dir

        data = (alfworld_data_dir(cfg.env.alfworld.data_dir) if cfg.env.name == "alfworld"
                else webshop_data_dir(cfg.env.webshop.data_dir))
        readme = data / "README.md"
        if readme.is_file():
            for line in readme.read_text(encoding="utf-8").splitlines():
                if line.startswith("Licence:"):
                    return f"{line.removeprefix('Licence:').strip()} (from {readme})"
        return f"see the README of the data folder ({readme} not found)"
    if cfg.env.name == "babyai":
        return "levels generated locally by minigrid (Apache-2.0); no third-party game data"
    return "games generated locally by TextWorld (MIT); no third-party game data"


def _notes(cfg: ExperimentConfig) -> list[str]:
    if cfg.env.name == "textworld":
        return ["A single TextWorld game is both the training and the evaluation game (evaluation "
                "only uses other seeds, and the game is deterministic): these demonstrations show "
                "the evaluated game itself."]
    return []
