"""Environment factories by name, and their registration with Ray Tune/RLlib.

`make_env(env_config)` builds the full observation pipeline an RLlib env runner uses: the
text environment named by `env.name`, wrapped by `PriorFeaturesWrapper` with an embedder and,
when `use_prior` is true, a `PriorClient` connected to the shared cache and LLM pool.
`env_config` holds plain dicts (`to_dict` of the config sections) so it travels to any node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import gymnasium as gym

from priorcache.envs.prior_features import PriorFeaturesWrapper
from priorcache.platform.config import EnvConfig, PriorConfig, from_dict, to_dict
from priorcache.platform.embed import TextEmbedder
from priorcache.platform.prior_client import PriorClient

RLLIB_ENV_ID = "priorcache/text"


def resolve_game_file(cfg: EnvConfig) -> Path:
    """The game to play: `env.game_file` if set, else the generated (cached) `env.game`."""
    from priorcache.envs.textworld_games import GameSpec, ensure_game

    if cfg.game_file:
        return Path(cfg.game_file).resolve()
    spec = GameSpec(cfg.game.world_size, cfg.game.nb_objects, cfg.game.quest_length, cfg.game.seed)
    return ensure_game(spec, Path(cfg.games_dir).resolve()).resolve()


def _make_textworld(cfg: EnvConfig) -> gym.Env:
    from priorcache.envs.textworld_env import TextWorldEnv

    return TextWorldEnv(resolve_game_file(cfg), max_steps=cfg.max_steps, max_actions=cfg.max_actions)


TEXT_ENVS: dict[str, Callable[[EnvConfig], gym.Env]] = {"textworld": _make_textworld}


def make_text_env(cfg: EnvConfig) -> gym.Env:
    """The text environment named by `env.name` (observations `{"state", "candidates"}`)."""
    return TEXT_ENVS[cfg.name](cfg)


def env_config(env: EnvConfig, prior: PriorConfig, use_prior: bool) -> dict[str, Any]:
    """The RLlib `env_config` that `make_env` reads."""
    return {"env": to_dict(env), "prior": to_dict(prior), "use_prior": use_prior}


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
    return PriorFeaturesWrapper(make_text_env(env_cfg), embedder, client)


def register() -> None:
    """Make `RLLIB_ENV_ID` known to RLlib in this process (idempotent)."""
    from ray.tune.registry import register_env

    register_env(RLLIB_ENV_ID, make_env)
