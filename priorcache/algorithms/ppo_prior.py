"""PPO-Prior: RLlib PPO acting by posterior sampling with an LLM prior, KL-regularised to it.

    pi(a|s) ∝ p_LLM(a|s)^w · exp(f_theta(s, a))                     (PriorPolicyModule)
    L = L_PPO(pi) + alpha · E_s[ KL(pi(.|s) || p_LLM(.|s)) ]          (PPOPriorTorchLearner)

with w and alpha lowered as training proceeds (`PriorTrustSchedule`). The prior arrives in
the observations (see `envs/prior_features.py`), fetched through the shared cache.

How to use it from plain Python, like any RLlib algorithm::

    from priorcache.algorithms.ppo_prior import PPOPriorConfig
    from priorcache.envs.registry import RLLIB_ENV_ID, env_config, register
    from priorcache.platform.config import EnvConfig, PriorConfig

    register()
    config = (
        PPOPriorConfig()
        .environment(RLLIB_ENV_ID, env_config=env_config(EnvConfig(), PriorConfig(), use_prior=True))
        .prior(weight_start=1.0, weight_end=0.25, kl_coeff=0.05, decay_steps=20_000)
    )
    algo = config.build_algo()
    print(algo.train())

`priorcache run experiments/textworld_ppo_prior.yaml` builds exactly this config.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from priorcache.algorithms.prior_module import PriorPolicyModule, masked_prior_logp
from priorcache.algorithms.prior_trust import PRIOR_WEIGHT_KEY, PriorTrustConfig, apply_prior_trust

PRIOR_KL_KEY = "prior_kl"
PRIOR_KL_COEFF_KEY = "prior_kl_coeff"


class PPOPriorConfig(PriorTrustConfig, PPOConfig):
    """`PPOConfig` plus a `.prior(...)` section (the prior-trust schedule)."""

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or PPOPrior)

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(module_class=PriorPolicyModule)

    def get_default_learner_class(self) -> type:
        return PPOPriorTorchLearner


class PPOPriorTorchLearner(PPOTorchLearner):
    """PPO's loss plus alpha * KL(pi || prior); applies the prior-trust schedule."""

    def build(self) -> None:
        super().build()
        self._prior_kl_coeff: dict[str, float] = {
            module_id: self.config.get_config_for_module(module_id).prior_kl_coeff
            for module_id in self.module.keys()
        }

    def compute_loss_for_module(self, *, module_id: str, config: PPOPriorConfig, batch: dict[str, Any],
                                fwd_out: dict[str, Any]) -> torch.Tensor:
        ppo_loss = super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
        pi_logp = torch.log_softmax(fwd_out[Columns.ACTION_DIST_INPUTS], dim=-1)
        prior_logp, mask = masked_prior_logp(batch[Columns.OBS])
        per_slot = torch.where(mask, pi_logp.exp() * (pi_logp - prior_logp), torch.zeros_like(pi_logp))
        kl = per_slot.sum(-1)
        if Columns.LOSS_MASK in batch:
            kl = kl[batch[Columns.LOSS_MASK]]
        mean_kl = kl.mean()
        coeff = self._prior_kl_coeff[module_id]
        self.metrics.log_dict(
            {PRIOR_KL_KEY: mean_kl, PRIOR_KL_COEFF_KEY: coeff,
             PRIOR_WEIGHT_KEY: self.module[module_id].unwrapped().prior_weight},
            key=module_id, window=1,
        )
        return ppo_loss + coeff * mean_kl

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        self._prior_kl_coeff.update(apply_prior_trust(self, timesteps))


class PPOPrior(PPO):
    """PPO with an LLM prior; configure it with `PPOPriorConfig`."""

    @classmethod
    def get_default_config(cls) -> PPOPriorConfig:
        return PPOPriorConfig()
