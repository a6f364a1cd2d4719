"""Environments the agent plays (text and continuous control), and their observation pipeline.

- `textworld_games`: seeded TextWorld game generation, cached on disk (`GameSpec`, `ensure_game`).
- `textworld_suites`: families of TextWorld challenge games with train/eval splits (`suite_games`).
- `textworld_env`: `TextWorldEnv`, a gymnasium env with text observations `{"state", "candidates"}`.
- `alfworld_env`: `AlfworldEnv`, the real ALFWorld games (shared/data/alfworld), same contract.
- `babyai_env`: `BabyAITextEnv`, BabyAI levels described in sentences, same contract.
- `candidates`: that contract (action slots, candidate index, game choice on reset).
- `prior_features`: `PriorFeaturesWrapper`, text -> embeddings + LLM prior arrays.
- `registry`: env factories by config name and their RLlib registration.
- `continuous_env`: `make_continuous_env`, MuJoCo locomotion and Meta-World v3 tasks (Box
  observations, actions in [-1, 1]^d, the state text in `info["state_text"]`).
- `describers`: rule-based state -> text per continuous domain (`describe`, `rule_describer`).
- `state_propagation`: the learned describer (contrastive propagation of rule labels).
- `motion_primitives`: the symbolic actions the LLM scores in the continuous domains (`primitives`).

The game and env names below are re-exported lazily: importing this package (e.g. through
`priorcache.envs.registry` on a process that never plays) does not load TextWorld, whose
import takes about a second.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "GameSpec": "textworld_games",
    "GameGenerationError": "textworld_games",
    "ensure_game": "textworld_games",
    "game_path": "textworld_games",
    "TextWorldEnv": "textworld_env",
    "GameFileError": "textworld_env",
    "AlfworldEnv": "alfworld_env",
    "AlfworldGameError": "alfworld_env",
    "alfworld_games": "alfworld_env",
    "suite_games": "textworld_suites",
    "BabyAITextEnv": "babyai_env",
    "BabyAILevelError": "babyai_env",
    "make_continuous_env": "continuous_env",
    "MetaWorldEnv": "continuous_env",
    "describe": "describers",
    "Primitive": "motion_primitives",
    "primitives": "motion_primitives",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
