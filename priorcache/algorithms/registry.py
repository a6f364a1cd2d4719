"""Experiment config -> RLlib `AlgorithmConfig`, one factory per `algorithm.name`.

The YAML runner uses these factories; they build the same `PPOPriorConfig` /
`DQNPriorConfig` / `SACPriorConfig` a user would write in Python, so there is one code path.
`ppo` is PPO-Prior with the prior switched off (weight 0, no KL, no LLM asked): the no-prior
baseline on the identical network; `dqn` is the same for DQN-Prior (every candidate, plain
Boltzmann exploration over Q). `cql_prior` and `cql` train offline (`cql_discrete.py`) on the
dataset of `offline.*` and evaluate online in the env every `offline.eval_interval` iterations;
`cql` never asks the LLM (its evaluation env serves the uniform prior). `sac` is RLlib's own SAC
(its learner: entropy bonus, target entropy) on SAC-Prior's network, which reads the raw
observation and not the (uniform, no LLM asked) prior columns: the continuous no-prior
baseline, same hyper-parameters. `cql_prior_continuous` and `cql_continuous` are their offline
counterparts (`cql_prior_continuous.py`): RLlib's CQL on the same network, on the dataset of
`offline.*`; CQL-Prior draws the conservative term's out-of-distribution actions from the
prior mixture recorded in the dataset and regularises the actor by KL(pi || prior).
"""

from __future__ import annotations

from typing import Callable

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.algorithms.sac import SACConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

import gymnasium as gym

from priorcache.algorithms.cql_discrete import DiscreteCQLConfig
from priorcache.algorithms.cql_prior_continuous import ContinuousCQLConfig, CQLPriorConfig
from priorcache.algorithms.dqn_prior import DQNPriorConfig
from priorcache.algorithms.ppo_prior import PPOPriorConfig
from priorcache.algorithms.prior_metrics import PriorMetricsCallback
from priorcache.algorithms.sac_prior import PRIOR_COMPONENTS, SACPriorCatalog, SACPriorConfig, SACPriorTorchRLModule
from priorcache.envs.continuous_env import CONTINUOUS_ENVS, make_continuous_env
from priorcache.envs.continuous_prior import prior_obs_space
from priorcache.envs.motion_primitives import primitives
from priorcache.envs.prior_features import feature_space
from priorcache.envs.registry import RLLIB_CONTINUOUS_ENV_ID, RLLIB_ENV_ID, env_config
from priorcache.offline.dataset import dataset_dir, offline_input
from priorcache.platform.config import ExperimentConfig
from priorcache.platform.embed import EMBEDDING_DIM


NO_PRIOR = ("ppo", "dqn", "cql", "sac", "cql_continuous")
"""The algorithms that run without an LLM (baselines)."""


def uses_prior(cfg: ExperimentConfig) -> bool:
    """Whether the algorithm asks the LLM for a prior."""
    return cfg.algorithm.name not in NO_PRIOR


def _common(config: AlgorithmConfig, cfg: ExperimentConfig) -> AlgorithmConfig:
    """Environment, runners, module width, metrics and seed: the same for every algorithm."""
    env_id = RLLIB_CONTINUOUS_ENV_ID if cfg.env.name in CONTINUOUS_ENVS else RLLIB_ENV_ID
    return (
        config
        .environment(env_id, env_config=env_config(cfg.env, cfg.prior, uses_prior(cfg)))
        # No sample timeout: while the cache is cold, LLM misses make sampling slow, not stuck.
        .env_runners(num_env_runners=cfg.train.num_env_runners, num_envs_per_env_runner=1,
                     num_cpus_per_env_runner=1, sample_timeout_s=None)
        .learners(num_learners=0)
        .rl_module(model_config={"hidden": cfg.algorithm.hidden})
        .callbacks(PriorMetricsCallback)
        .debugging(seed=cfg.seed)
    )


def _ppo_family(cfg: ExperimentConfig) -> PPOPriorConfig:
    a = cfg.algorithm
    return _common(PPOPriorConfig(), cfg).training(
        lr=a.lr, gamma=a.gamma, train_batch_size_per_learner=a.train_batch_size,
        minibatch_size=a.minibatch_size, num_epochs=a.num_epochs, entropy_coeff=a.entropy_coeff,
    )


def _ppo_prior(cfg: ExperimentConfig) -> AlgorithmConfig:
    a = cfg.algorithm
    return _ppo_family(cfg).prior(
        weight_start=a.prior_weight_start, weight_end=a.prior_weight_end,
        kl_coeff=a.prior_kl_coeff, decay_steps=a.prior_decay_steps,
    )


def _ppo(cfg: ExperimentConfig) -> AlgorithmConfig:
    return _ppo_family(cfg).prior(weight_start=0.0, weight_end=0.0, kl_coeff=0.0)


def _dqn_family(cfg: ExperimentConfig) -> DQNPriorConfig:
    a = cfg.algorithm
    return (
        _common(DQNPriorConfig(), cfg)
        .training(
            lr=a.lr, gamma=a.gamma, train_batch_size_per_learner=a.minibatch_size,
            num_steps_sampled_before_learning_starts=a.learning_starts,
            target_network_update_freq=a.target_update_freq,
            replay_buffer_config={"type": "PrioritizedEpisodeReplayBuffer", "capacity": a.replay_capacity},
        )
        # An iteration samples `train_batch_size` env steps, as for PPO, so budgets compare.
        .reporting(min_sample_timesteps_per_iteration=a.train_batch_size)
    )


def _dqn_prior(cfg: ExperimentConfig) -> AlgorithmConfig:
    a = cfg.algorithm
    return (
        _dqn_family(cfg)
        .posterior(q_temperature=a.q_temperature, top_k=a.prior_top_k)
        .prior(weight_start=a.prior_weight_start, weight_end=a.prior_weight_end,
               decay_steps=a.prior_decay_steps)
    )


def _dqn(cfg: ExperimentConfig) -> AlgorithmConfig:
    return _dqn_family(cfg).posterior(q_temperature=cfg.algorithm.q_temperature, top_k=0).prior(
        weight_start=0.0, weight_end=0.0)


OFFLINE = ("cql_prior", "cql", "cql_prior_continuous", "cql_continuous")
"""The algorithms that train on a recorded dataset (`offline.*`) instead of sampling."""


def _offline(config: AlgorithmConfig, cfg: ExperimentConfig) -> AlgorithmConfig:
    """The dataset of `offline.*` and the online evaluation every `offline.eval_interval` iterations."""
    off = cfg.offline
    config.offline_data(**offline_input(dataset_dir(cfg)),
                        dataset_num_iters_per_learner=cfg.algorithm.updates_per_iteration)
    if off.eval_interval:
        # Online evaluation in the driver's own env, greedy, on held-out seeds: the per-iteration
        # return and success of an offline run, and its time to reach a return.
        config.evaluation(
            evaluation_interval=off.eval_interval, evaluation_duration=off.eval_episodes,
            evaluation_duration_unit="episodes", evaluation_num_env_runners=0,
            evaluation_config={"explore": False, "env_config": env_config(cfg.env, cfg.prior, uses_prior(cfg), "eval")},
        )
    return config


def _cql_family(cfg: ExperimentConfig) -> DiscreteCQLConfig:
    a = cfg.algorithm
    return _offline(
        _common(DiscreteCQLConfig(), cfg)
        # Offline there is no env runner to read the spaces from: they are the feature wrapper's.
        .environment(observation_space=feature_space(cfg.env.max_actions, EMBEDDING_DIM),
                     action_space=gym.spaces.Discrete(cfg.env.max_actions))
        .training(lr=a.lr, gamma=a.gamma, train_batch_size_per_learner=a.minibatch_size, tau=a.tau),
        cfg,
    )


def _cql_prior(cfg: ExperimentConfig) -> AlgorithmConfig:
    a = cfg.algorithm
    return _cql_family(cfg).conservative(cql_alpha=a.cql_alpha, top_k=a.prior_top_k, prior_weight=a.cql_prior_weight,
                                         q_temperature=a.q_temperature)


def _cql(cfg: ExperimentConfig) -> AlgorithmConfig:
    return _cql_family(cfg).conservative(cql_alpha=cfg.algorithm.cql_alpha, top_k=0, prior_weight=0.0)


def _sac_family(config: SACConfig, cfg: ExperimentConfig) -> SACConfig:
    a = cfg.algorithm
    return (
        _common(config, cfg)
        .training(
            actor_lr=a.lr, critic_lr=a.lr, alpha_lr=a.lr, gamma=a.gamma, tau=a.tau, initial_alpha=a.initial_alpha,
            train_batch_size_per_learner=a.minibatch_size,
            num_steps_sampled_before_learning_starts=a.learning_starts,
            replay_buffer_config={"type": "PrioritizedEpisodeReplayBuffer", "capacity": a.replay_capacity,
                                  "alpha": 0.6, "beta": 0.4},
        )
        # SAC-Prior's module (the prior columns dropped) for both: identical networks.
        .rl_module(
            rl_module_spec=RLModuleSpec(module_class=SACPriorTorchRLModule, catalog_class=SACPriorCatalog),
            model_config={"fcnet_hiddens": [a.hidden], "head_fcnet_hiddens": [a.hidden],
                          PRIOR_COMPONENTS: len(primitives(cfg.env.name))},
        )
        # An iteration samples `train_batch_size` env steps (one update per env step), so budgets compare.
        .reporting(min_sample_timesteps_per_iteration=a.train_batch_size, min_time_s_per_iteration=0)
    )


def _continuous_cql_family(config: ContinuousCQLConfig, cfg: ExperimentConfig) -> ContinuousCQLConfig:
    a = cfg.algorithm
    env = make_continuous_env(cfg.env)  # offline there is no env runner to read the spaces from
    k = len(primitives(cfg.env.name))
    config = (
        _common(config, cfg)
        .environment(observation_space=prior_obs_space(env.observation_space, k), action_space=env.action_space)
        # RLlib's CQLConfig sets a global `lr`, which its SAC base rejects beside the per-part rates.
        .training(lr=None, actor_lr=a.lr, critic_lr=a.lr, alpha_lr=a.lr, gamma=a.gamma, tau=a.tau,
                  initial_alpha=a.initial_alpha, train_batch_size_per_learner=a.minibatch_size,
                  min_q_weight=a.cql_alpha, bc_iters=a.cql_bc_updates)
        # SAC-Prior's module (the prior columns dropped) for both: identical networks.
        .rl_module(model_config={"fcnet_hiddens": [a.hidden], "head_fcnet_hiddens": [a.hidden], PRIOR_COMPONENTS: k})
    )
    env.close()
    return _offline(config, cfg)


def _cql_prior_continuous(cfg: ExperimentConfig) -> AlgorithmConfig:
    return _continuous_cql_family(CQLPriorConfig(), cfg).prior_mixture(
        primitives=primitives(cfg.env.name), target_kl_per_dim=cfg.algorithm.prior_target_kl)


def _cql_continuous(cfg: ExperimentConfig) -> AlgorithmConfig:
    return _continuous_cql_family(ContinuousCQLConfig(), cfg)


def _sac_prior(cfg: ExperimentConfig) -> AlgorithmConfig:
    return _sac_family(SACPriorConfig(), cfg).prior_mixture(
        primitives=primitives(cfg.env.name), target_kl_per_dim=cfg.algorithm.prior_target_kl)


def _sac(cfg: ExperimentConfig) -> AlgorithmConfig:
    return _sac_family(SACConfig(), cfg)


ALGORITHMS: dict[str, Callable[[ExperimentConfig], AlgorithmConfig]] = {
    "ppo_prior": _ppo_prior,
    "ppo": _ppo,
    "dqn_prior": _dqn_prior,
    "dqn": _dqn,
    "cql_prior": _cql_prior,
    "cql": _cql,
    "sac_prior": _sac_prior,
    "sac": _sac,
    "cql_prior_continuous": _cql_prior_continuous,
    "cql_continuous": _cql_continuous,
}


def algorithm_config(cfg: ExperimentConfig) -> AlgorithmConfig:
    """The RLlib config of `algorithm.name` (`cfg.env` resolved by `envs.registry.resolve_env`)."""
    return ALGORITHMS[cfg.algorithm.name](cfg)
