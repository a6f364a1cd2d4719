"""Environment factories by name, and their registration with Ray Tune/RLlib.

`make_env(env_config)` builds the full observation pipeline an RLlib env runner uses: the
text environment named by `env.name`, wrapped by `PriorFeaturesWrapper` with an embedder and,
when `use_prior` is true, a `PriorClient` connected to the shared cache and LLM pool.
`env_config` holds plain dicts (`to_dict` of the config sections) so it travels to any node.
Its `role` ("train" or "eval") selects the games: TextWorld plays one game in both roles
(evaluation uses held-out seeds), a TextWorld suite and ALFWorld train on their train games
and evaluate on held-out games, BabyAI draws levels from seeds (evaluation seeds start at
`eval.seed`, beyond any seed training uses), WebShop draws goals from its train and eval
goal splits (held-out products). For WebShop with the prior, the env's search page offers
the queries the LLM proposes (`PriorClient.propose`) besides the instruction.

The continuous-control envs (`env.name` halfcheetah, walker2d, ant, metaworld;
`envs/continuous_env.py`) register apart, as `RLLIB_CONTINUOUS_ENV_ID`: their observations are
Box arrays, their state text comes in `info["state_text"]`, and they play the same way in both
roles (evaluation differs by its seeds).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym

from priorcache.envs.continuous_env import CONTINUOUS_ENVS, make_continuous_env
from priorcache.envs.prior_features import PriorFeaturesWrapper
from priorcache.envs.recent_actions import RecentActions
from priorcache.platform.config import EnvConfig, PriorConfig, from_dict, to_dict
from priorcache.platform.embed import TextEmbedder
from priorcache.platform.prior_client import PriorClient

RLLIB_ENV_ID = "priorcache/text"
RLLIB_CONTINUOUS_ENV_ID = "priorcache/continuous"


def resolve_game_file(cfg: EnvConfig) -> Path:
    """The game to play: `env.game_file` if set, else the generated (cached) `env.game`."""
    from priorcache.envs.textworld_games import GameSpec, ensure_game

    if cfg.game_file:
        return Path(cfg.game_file).resolve()
    spec = GameSpec(cfg.game.world_size, cfg.game.nb_objects, cfg.game.quest_length, cfg.game.seed)
    return ensure_game(spec, Path(cfg.games_dir).resolve()).resolve()


def resolve_env(cfg: EnvConfig) -> EnvConfig:
    """`cfg` with every path absolute and generated games on disk, ready to ship to any node."""
    if cfg.name == "textworld":
        return replace(cfg, game_file=str(resolve_game_file(cfg)))
    if cfg.name == "textworld_suite":
        from priorcache.envs.textworld_suites import suite_games

        games_dir = str(Path(cfg.games_dir).resolve())
        for role in ROLES:  # generate here, once, not in every env runner
            suite_games(cfg.suite, games_dir, role)
        return replace(cfg, games_dir=games_dir)
    if cfg.name == "babyai":
        from priorcache.envs.babyai_env import check_level

        check_level(cfg.babyai.level)
        return cfg
    if cfg.name in CONTINUOUS_ENVS:
        return cfg  # nothing to generate or locate; load_config has checked the Meta-World task
    if cfg.name == "webshop":
        from priorcache.envs.webshop_data import check_data_dir

        return replace(cfg, webshop=replace(cfg.webshop, data_dir=str(check_data_dir(cfg.webshop.data_dir))))
    from priorcache.envs.alfworld_env import alfworld_data_dir

    return replace(cfg, alfworld=replace(cfg.alfworld, data_dir=str(alfworld_data_dir(cfg.alfworld.data_dir))))


ROLES = ("train", "eval")


def _make_textworld(cfg: EnvConfig, role: str) -> gym.Env:
    from priorcache.envs.textworld_env import TextWorldEnv

    return TextWorldEnv(resolve_game_file(cfg), max_steps=cfg.max_steps, max_actions=cfg.max_actions)


def alfworld_split(cfg: EnvConfig, role: str) -> list[Path]:
    """The playable ALFWorld games of the split `role` plays.

    With `max_games`, games are taken round-robin over the task types (each type's games in
    name order), so a small subset still covers every task type.
    """
    from priorcache.envs.alfworld_env import alfworld_data_dir, alfworld_games

    a = cfg.alfworld
    split = a.train_split if role == "train" else a.eval_split
    key = "env.alfworld.train_split" if role == "train" else "env.alfworld.eval_split"
    split_dir = alfworld_data_dir(a.data_dir) / split
    games = alfworld_games(split_dir, key=key)
    if not a.max_games:
        return games
    by_type: dict[str, list[Path]] = {}
    for game in games:  # trial folders are named <task type>-<object>-...; game files sit below
        task_type = game.relative_to(split_dir).parts[0].split("-")[0]
        by_type.setdefault(task_type, []).append(game)
    interleaved = [g for group in itertools.zip_longest(*by_type.values()) for g in group if g is not None]
    return interleaved[: a.max_games]


def _make_alfworld(cfg: EnvConfig, role: str) -> gym.Env:
    from priorcache.envs.alfworld_env import AlfworldEnv

    return AlfworldEnv(alfworld_split(cfg, role), max_steps=cfg.max_steps, max_actions=cfg.max_actions)


def _make_textworld_suite(cfg: EnvConfig, role: str) -> gym.Env:
    from priorcache.envs.textworld_env import TextWorldEnv
    from priorcache.envs.textworld_suites import suite_games

    games = suite_games(cfg.suite, cfg.games_dir, role)
    return TextWorldEnv(games, max_steps=cfg.max_steps, max_actions=cfg.max_actions)


def _make_webshop(cfg: EnvConfig, role: str) -> gym.Env:
    from priorcache.envs.webshop_env import WebShopEnv

    w = cfg.webshop
    return WebShopEnv(w.train_split if role == "train" else w.eval_split, data_dir=w.data_dir,
                      max_steps=cfg.max_steps, max_actions=cfg.max_actions, results_per_page=w.results_per_page,
                      max_results=w.max_results, title_words=w.title_words, detail_chars=w.detail_chars)


def _make_babyai(cfg: EnvConfig, role: str) -> gym.Env:
    from priorcache.envs.babyai_env import BabyAITextEnv

    return BabyAITextEnv(cfg.babyai.level, max_steps=cfg.max_steps, max_actions=cfg.max_actions)


TEXT_ENVS: dict[str, Callable[[EnvConfig, str], gym.Env]] = {
    "textworld": _make_textworld,
    "textworld_suite": _make_textworld_suite,
    "alfworld": _make_alfworld,
    "babyai": _make_babyai,
    "webshop": _make_webshop,
}


def make_text_env(cfg: EnvConfig, role: str = "train") -> gym.Env:
    """The text environment named by `env.name` (observations `{"state", "candidates"}`)."""
    if role not in ROLES:
        raise ValueError(f"env role {role!r}: choose one of {', '.join(ROLES)}")
    if cfg.name in CONTINUOUS_ENVS:
        raise ValueError(f"env.name={cfg.name} is a continuous env: build it with make_continuous_env")
    env = TEXT_ENVS[cfg.name](cfg, role)
    return RecentActions(env, cfg.history) if cfg.history else env


def env_config(env: EnvConfig, prior: PriorConfig, use_prior: bool, role: str = "train") -> dict[str, Any]:
    """The RLlib `env_config` that `make_env` reads."""
    return {"env": to_dict(env), "prior": to_dict(prior), "use_prior": use_prior, "role": role}


def make_env(config: dict[str, Any]) -> gym.Env:
    """RLlib env creator: text env + embeddings + (cached) LLM prior."""
    env_cfg = from_dict(EnvConfig, dict(config["env"]))
    prior_cfg = from_dict(PriorConfig, dict(config["prior"]))
    embedder = TextEmbedder(
        prior_cfg.embedder.model_path or None,
        n_threads=prior_cfg.embedder.n_threads,
        memo_size=prior_cfg.embedder.memo_size,
    )
    client = PriorClient(prior_cfg, embedder) if config["use_prior"] else None
    text_env = make_text_env(env_cfg, config.get("role", "train"))
    if client is not None and env_cfg.name == "webshop" and env_cfg.webshop.query_proposals:
        from priorcache.envs.webshop_env import SEARCH

        # Open actions: the prior's LLM proposes search queries, cached like its scores.
        n = env_cfg.webshop.query_proposals
        text_env.unwrapped.query_proposer = lambda state: client.propose(state, SEARCH, n)  # type: ignore[attr-defined]
    return PriorFeaturesWrapper(text_env, embedder, client)


def make_continuous_rllib_env(config: dict[str, Any]) -> gym.Env:
    """RLlib env creator of the continuous envs (`env_config` as `env_config()` writes it).

    The env's observation gets the LLM's log-weights over the domain's motion primitives
    appended (`ContinuousPriorWrapper`), asked through a `PriorClient` when `use_prior`,
    uniform otherwise. `render_mode` (optional) is passed to the env (videos).
    """
    from priorcache.envs.continuous_prior import ContinuousPriorWrapper, goal_line
    from priorcache.envs.motion_primitives import primitives

    env_cfg = from_dict(EnvConfig, dict(config["env"]))
    env = make_continuous_env(env_cfg, render_mode=config.get("render_mode"))
    client = PriorClient(from_dict(PriorConfig, dict(config["prior"]))) if config["use_prior"] else None
    return ContinuousPriorWrapper(env, primitives(env_cfg.name), client, goal_line(env_cfg.name, env_cfg.metaworld.task))


def register() -> None:
    """Make `RLLIB_ENV_ID` and `RLLIB_CONTINUOUS_ENV_ID` known to RLlib in this process (idempotent)."""
    from ray.tune.registry import register_env

    register_env(RLLIB_ENV_ID, make_env)
    register_env(RLLIB_CONTINUOUS_ENV_ID, make_continuous_rllib_env)
