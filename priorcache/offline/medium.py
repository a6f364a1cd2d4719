"""The `medium` behaviour policy: an online agent trained without the prior, stopped early.

`medium_config(cfg)` is the online experiment `offline.medium_experiment`, whose short
`train.iterations` is the "partially" of partially trained, on the dataset config's own `env`
(so the agent learns the game it will record), with a prior algorithm swapped for its no-prior
counterpart (`ppo_prior` -> `ppo`, `dqn_prior` -> `dqn`, `sac_prior` -> `sac`): the recorded
behaviour must not already follow the LLM prior, or CQL-Prior would be scored on data shaped by
its own prior. `train_medium(cfg)`
runs it through `priorcache run`'s harness (an MLflow run of its own, a checkpoint, the held-out
evaluation) and returns the trained module as a `TrainedBehaviour` whose description, on the
dataset card, names the run, its budget and its evaluated return.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from priorcache.offline.behaviour import TrainedBehaviour
from priorcache.platform.config import ConfigError, ExperimentConfig, load_config, validate

NO_PRIOR_COUNTERPART = {"ppo_prior": "ppo", "dqn_prior": "dqn", "sac_prior": "sac", "ppo": "ppo", "dqn": "dqn",
                        "sac": "sac"}
"""Online algorithm of the medium experiment -> the one that trains the medium policy."""


def medium_config(cfg: ExperimentConfig) -> ExperimentConfig:
    """The online experiment that trains `cfg`'s medium policy; ConfigError naming the key if it cannot."""
    off = cfg.offline
    if not off.medium_experiment:
        raise ConfigError(
            "config key 'offline.medium_experiment' is empty: the medium dataset is played by a partially "
            "trained online agent; name its experiment YAML (e.g. experiments/offline/textworld_medium.yaml)")
    try:
        medium = load_config(off.medium_experiment)
    except ConfigError as err:
        raise ConfigError(f"config key 'offline.medium_experiment': {err}") from err
    algorithm = NO_PRIOR_COUNTERPART.get(medium.algorithm.name)
    if algorithm is None:
        raise ConfigError(
            f"config key 'offline.medium_experiment': {off.medium_experiment} trains {medium.algorithm.name!r}, "
            f"which is not an online algorithm; name an experiment of {', '.join(sorted(set(NO_PRIOR_COUNTERPART)))}")
    medium = replace(
        medium, name=f"{cfg.name}-medium-behaviour", env=cfg.env, ray=cfg.ray, tracking=cfg.tracking,
        output_dir=cfg.output_dir, algorithm=replace(medium.algorithm, name=algorithm),
        train=replace(medium.train, checkpoint_every=0),
        eval=replace(medium.eval, videos=0),
    )
    try:  # load_config's checks again: the swapped env and algorithm must still fit together
        validate(medium)
    except ConfigError as err:
        raise ConfigError(
            f"config key 'offline.medium_experiment' ({off.medium_experiment} on this env): {err}") from err
    return medium


def train_medium(cfg: ExperimentConfig) -> TrainedBehaviour:
    """Train `medium_config(cfg)` (Ray initialised) and return its agent as the medium behaviour."""
    from priorcache.envs.continuous_env import CONTINUOUS_ENVS
    from priorcache.experiment import run_experiment, trained_module

    medium = medium_config(cfg)
    outcome = run_experiment(medium, tags={"offline_role": "medium_behaviour"})
    summary = outcome.summary
    evaluation = "greedy" if medium.eval.greedy else "sampled"
    description = (
        f"{medium.algorithm.name} without the prior, trained {medium.train.iterations} iterations "
        f"({summary['env_steps']:.0f} env steps) on {cfg.offline.medium_experiment}'s settings (MLflow run "
        f"{outcome.mlflow_run_id}; held-out {evaluation} return {summary['episode_return_mean']:.2f}), sampling "
        "its stochastic policy")
    module = trained_module(Path(summary["checkpoint"]))
    return TrainedBehaviour(module, cfg.env.name in CONTINUOUS_ENVS, description)
