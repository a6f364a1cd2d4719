"""DQN-Prior (Yan et al. 2024): Q-learning whose actions and TD targets are weighted by an LLM prior.

    pi(a|s) ∝ p_LLM(a|s)^w · exp(Q(s,a)/alpha)   over the k candidates the prior ranks highest
    y       = r + gamma · (1 - done) · sum_a' pi_target(a'|s') · Q_target(s', a')
    L       = E[ Huber(Q(s,a) - y) ]   (weighted by RLlib's prioritized replay)

The policy samples the posterior (`PriorQModule`); the TD target is the posterior's
expectation of the target network's Q-values, a soft, prior-weighted max. The prior weight w
decays with the same `PriorTrustSchedule` as PPO-Prior (`.prior(...)`); alpha and k are set
with `.posterior(...)`. Everything else (replay buffer, target updates, n-step) is RLlib DQN.

How to use it from plain Python, like any RLlib algorithm::

    from priorcache.algorithms.dqn_prior import DQNPriorConfig
    from priorcache.envs.registry import RLLIB_ENV_ID, env_config, register
    from priorcache.platform.config import EnvConfig, PriorConfig

    register()
    config = (
        DQNPriorConfig()
        .environment(RLLIB_ENV_ID, env_config=env_config(EnvConfig(), PriorConfig(), use_prior=True))
        .posterior(q_temperature=0.2, top_k=5)
        .prior(weight_start=1.0, weight_end=0.25, decay_steps=20_000)
    )
    algo = config.build_algo()
    print(algo.train())

`priorcache run experiments/textworld_dqn_prior.yaml` builds exactly this config.
"""

from __future__ import annotations

from typing import Any, Self

import torch
from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.dqn import DQN, DQNConfig
from ray.rllib.algorithms.dqn.dqn_learner import QF_LOSS_KEY, QF_MEAN_KEY, TD_ERROR_MEAN_KEY
from ray.rllib.algorithms.dqn.torch.dqn_torch_learner import DQNTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.metrics import TD_ERROR_KEY
from torch import nn

from priorcache.algorithms.prior_q_module import (
    Q_VALUES,
    TARGET_NEXT_LOGITS,
    TARGET_NEXT_Q_VALUES,
    PriorQModule,
)
from priorcache.algorithms.prior_trust import PRIOR_WEIGHT_KEY, PriorTrustConfig, apply_prior_trust



class DQNPriorConfig(PriorTrustConfig, DQNConfig):
    """`DQNConfig` plus `.prior(...)` (trust schedule) and `.posterior(...)` (alpha, top-k)."""

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or DQNPrior)
        self.q_temperature = 0.2
        self.prior_top_k = 5

    def posterior(
        self,
        *,
        q_temperature: float = NotProvided,  # type: ignore[assignment]
        top_k: int = NotProvided,  # type: ignore[assignment]
    ) -> Self:
        """Set the posterior the agent acts by and bootstraps from.

        Args:
            q_temperature: alpha in exp(Q/alpha); small trusts Q more, large trusts the prior.
            top_k: act only among the k candidates the prior ranks highest (0 = all).
        """
        if q_temperature is not NotProvided:
            self.q_temperature = q_temperature
        if top_k is not NotProvided:
            self.prior_top_k = top_k
        return self

    def validate(self) -> None:
        super().validate()
        if self.q_temperature <= 0:
            self._value_error("`q_temperature` in `.posterior(...)` must be > 0")
        if self.prior_top_k < 0:
            self._value_error("`top_k` in `.posterior(...)` must be >= 0 (0 = every candidate)")

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(module_class=PriorQModule)

    def get_default_learner_class(self) -> type:
        return DQNPriorTorchLearner

    @property
    def _model_config_auto_includes(self) -> dict[str, Any]:
        return super()._model_config_auto_includes | {
            "q_temperature": self.q_temperature, "prior_top_k": self.prior_top_k,
        }


class DQNPriorTorchLearner(DQNTorchLearner):
    """TD loss with the prior-weighted expected target; target updates from RLlib's DQN learner."""

    def compute_loss_for_module(self, *, module_id: str, config: DQNPriorConfig, batch: dict[str, Any],
                                fwd_out: dict[str, Any]) -> torch.Tensor:
        actions = batch[Columns.ACTIONS].long()
        q_selected = fwd_out[Q_VALUES].gather(-1, actions[:, None]).squeeze(-1)
        next_pi = torch.softmax(fwd_out[TARGET_NEXT_LOGITS], dim=-1)
        # Empty slots have pi = 0 but arbitrary Q; zero them so they add nothing.
        next_value = (next_pi * torch.where(next_pi > 0, fwd_out[TARGET_NEXT_Q_VALUES], 0.0)).sum(-1)
        not_done = 1.0 - batch[Columns.TERMINATEDS].float()
        target = (batch[Columns.REWARDS] + config.gamma ** batch["n_step"] * not_done * next_value).detach()
        loss_fn = nn.HuberLoss if config.td_error_loss_fn == "huber" else nn.MSELoss
        loss = (batch["weights"] * loss_fn(reduction="none")(q_selected, target)).mean()
        td_error = (q_selected - target).abs()
        self.metrics.log_value(key=(module_id, TD_ERROR_KEY), value=td_error, reduce="item_series")
        self.metrics.log_dict(
            {QF_LOSS_KEY: loss, QF_MEAN_KEY: q_selected.mean(), TD_ERROR_MEAN_KEY: td_error.mean(),
             PRIOR_WEIGHT_KEY: self.module[module_id].unwrapped().prior_weight},
            key=module_id, window=1,
        )
        return loss

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        apply_prior_trust(self, timesteps)


class DQNPrior(DQN):
    """DQN with an LLM prior; configure it with `DQNPriorConfig`."""

    @classmethod
    def get_default_config(cls) -> DQNPriorConfig:
        return DQNPriorConfig()
