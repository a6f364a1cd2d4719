"""SAC-Prior: RLlib SAC whose entropy bonus is replaced by a KL to the LLM's motion-primitive prior.

    prior(a|s)  = tanh-pushforward of sum_k w_k(s) N(m_k, s_k)   w(s) = softmax(LLM log p(primitive_k | s))
    actor loss  = E_s E_{a~pi}[ alpha · (log pi(a|s) - log prior(a|s)) - Q(s, a) ]
    critic      = r + gamma · (Q_target(s', a') - alpha · (log pi(a'|s') - log prior(a'|s'))),  a' ~ pi
    alpha loss  = -log(alpha) · (KL_hat(pi || prior) - target_kl)

This is the KL-regularised (control-as-inference) objective with the prior as reference
policy: its optimum is pi*(a|s) ∝ prior(a|s) · exp(Q(s,a)/alpha). SAC is the special case of a
flat prior. Every KL is the one-sample reparameterised estimate of `platform/mixture_prior.py`,
taken on the pre-tanh sample (the tanh Jacobians of pi and prior cancel, see there).

The temperature rule (the analogue of SAC's target entropy): alpha is a Lagrange multiplier
for E_s[KL(pi || prior)] <= `target_kl`; gradient steps on log(alpha) raise it while the
policy strays further from the prior than the target, and lower it while it stays closer,
so the policy may leave the prior where Q says so, by about `target_kl` nats per state.
`target_kl` is given per action dimension (`.prior_mixture(target_kl_per_dim=...)`), like
SAC's target entropy of -1 per dimension.

The prior reaches the learner in the observations: the env wrapper
(`envs/continuous_prior.py`) appends the LLM's log-weights over the K primitives to the raw
observation, so they are stored in the replay buffer with each transition. The RLModule
*ignores* them: actor and critics read only the raw observation (the first columns), so a
trained SAC-Prior policy acts without asking the LLM, and plain SAC (`algorithm.name=sac`:
RLlib's own SAC learner on this module, uniform prior columns, no LLM) has the identical network.

How to use it from plain Python, like any RLlib algorithm::

    from ray.tune.registry import register_env
    from priorcache.algorithms.sac_prior import SACPriorConfig
    from priorcache.envs.continuous_env import make_continuous_env
    from priorcache.envs.continuous_prior import ContinuousPriorWrapper, goal_line
    from priorcache.envs.motion_primitives import primitives
    from priorcache.platform.config import EnvConfig, LLMConfig, PriorConfig
    from priorcache.platform.prior_client import PriorClient

    prims = primitives("halfcheetah")
    register_env("cheetah", lambda _: ContinuousPriorWrapper(
        make_continuous_env(EnvConfig(name="halfcheetah", max_steps=1000)), prims,
        PriorClient(PriorConfig(llm=LLMConfig(prompt="motion-v1"))), goal_line("halfcheetah")))
    config = (
        SACPriorConfig()
        .environment("cheetah")
        .prior_mixture(primitives=prims, target_kl_per_dim=1.0)
    )
    algo = config.build_algo()      # after ray.init()
    print(algo.train())

`priorcache run experiments/halfcheetah_sac_prior.yaml` builds this config through
`algorithms/registry.py`.
"""

from __future__ import annotations

from typing import Any, Self, Sequence

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.sac import SAC, SACConfig
from ray.rllib.algorithms.sac.sac_catalog import SACCatalog
from ray.rllib.algorithms.sac.sac_learner import (
    ACTION_DIST_INPUTS_NEXT, LOGPS_KEY, QF_LOSS_KEY, QF_MAX_KEY, QF_MEAN_KEY, QF_MIN_KEY, QF_PREDS,
    QF_TWIN_LOSS_KEY, QF_TWIN_PREDS, TD_ERROR_MEAN_KEY,
)
from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import DefaultSACTorchRLModule
from ray.rllib.algorithms.sac.torch.sac_torch_learner import SACTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import POLICY_LOSS_KEY
from ray.rllib.core.models.base import ENCODER_OUT
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.metrics import TD_ERROR_KEY
from ray.rllib.utils.numpy import MAX_LOG_NN_OUTPUT, MIN_LOG_NN_OUTPUT

from priorcache.algorithms.ppo_prior import PRIOR_KL_KEY
from priorcache.platform.mixture_prior import MixturePrior, PrimitiveLike, kl_sample, tanh_log_jacobian

PRE_TANH = "pre_tanh_resampled"
"""fwd_out key: the reparameterised pre-tanh policy sample u at s (a = tanh(u))."""
PRE_TANH_NEXT = "pre_tanh_next_resampled"
"""fwd_out key: the pre-tanh policy sample at s' (no gradient)."""
PRIOR_COMPONENTS = "prior_components"
"""model_config key: K, the number of prior columns at the end of the observation."""
PRIOR_ALPHA_KEY = "prior_alpha"


def policy_gaussian(dist_inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) of the pre-tanh Gaussian, clamped exactly as RLlib's `TorchSquashedGaussian`."""
    mean, log_std = dist_inputs.chunk(2, dim=-1)
    return mean, log_std.clamp(MIN_LOG_NN_OUTPUT, MAX_LOG_NN_OUTPUT).exp()


def raw_obs_space(space: gym.spaces.Box, k: int) -> gym.spaces.Box:
    """The observation space without its last k (prior) columns."""
    return gym.spaces.Box(space.low[:-k], space.high[:-k], dtype=space.dtype)


class SACPriorCatalog(SACCatalog):
    """SAC's catalog, building encoders for the raw observation (the prior columns dropped)."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, model_config_dict: dict,
                 view_requirements: dict | None = None) -> None:
        super().__init__(raw_obs_space(observation_space, model_config_dict[PRIOR_COMPONENTS]), action_space,
                         model_config_dict, view_requirements)


class SACPriorTorchRLModule(DefaultSACTorchRLModule):
    """RLlib's SAC module on the raw observation; the train pass also returns the pre-tanh samples."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["catalog_class"] = kwargs.get("catalog_class") or SACPriorCatalog
        super().__init__(*args, **kwargs)

    def _raw(self, batch: dict[str, Any]) -> dict[str, Any]:
        k = self.model_config[PRIOR_COMPONENTS]
        return {key: (value[..., :-k] if key in (Columns.OBS, Columns.NEXT_OBS) else value)
                for key, value in batch.items()}

    def _forward_inference(self, batch: dict[str, Any]) -> dict[str, Any]:
        # RLlib's exploration pass is this inference pass.
        return super()._forward_inference(self._raw(batch))

    def _forward_train_continuous(self, batch: dict[str, Any]) -> dict[str, Any]:
        # RLlib 2.60's `_forward_train_continuous` on the raw observation, keeping the pre-tanh
        # samples (RLlib's squashed distribution returns only tanh(u), and atanh(tanh(u)) is
        # lossy near the bounds).
        batch = self._raw(batch)
        obs, next_obs = batch[Columns.OBS], batch[Columns.NEXT_OBS]
        out: dict[str, Any] = {}
        taken = {Columns.OBS: obs, Columns.ACTIONS: batch[Columns.ACTIONS]}
        out[QF_PREDS] = self._qf_forward_train_helper(taken, self.qf_encoder, self.qf)
        if self.twin_q:
            out[QF_TWIN_PREDS] = self._qf_forward_train_helper(taken, self.qf_twin_encoder, self.qf_twin)
        out[Columns.ACTION_DIST_INPUTS] = self.pi(self.pi_encoder({Columns.OBS: obs})[ENCODER_OUT])
        out[ACTION_DIST_INPUTS_NEXT] = self.pi(self.pi_encoder({Columns.OBS: next_obs})[ENCODER_OUT])

        mean, std = policy_gaussian(out[Columns.ACTION_DIST_INPUTS])
        u = mean + std * torch.randn_like(mean)  # reparameterised
        out[PRE_TANH] = u
        out["logp_resampled"] = torch.distributions.Normal(mean, std).log_prob(u).sum(-1) - tanh_log_jacobian(u)
        with torch.no_grad():
            next_mean, next_std = policy_gaussian(out[ACTION_DIST_INPUTS_NEXT])
            u_next = next_mean + next_std * torch.randn_like(next_mean)
            out[PRE_TANH_NEXT] = u_next
            # For RLlib's own SAC learner (`algorithm.name=sac` runs on this module too).
            out["logp_next_resampled"] = (torch.distributions.Normal(next_mean, next_std).log_prob(u_next).sum(-1)
                                          - tanh_log_jacobian(u_next))
            out["q_target_next"] = self.forward_target({Columns.OBS: next_obs, Columns.ACTIONS: torch.tanh(u_next)})

        # Q at the policy's own action with the critics frozen: the actor's gradient only.
        critics = [*self.qf.parameters(), *self.qf_encoder.parameters()]
        if self.twin_q:
            critics += [*self.qf_twin.parameters(), *self.qf_twin_encoder.parameters()]
        for p in critics:
            p.requires_grad_(False)
        out["q_curr"] = self.compute_q_values({Columns.OBS: obs, Columns.ACTIONS: torch.tanh(u)})
        for p in critics:
            p.requires_grad_(True)
        return out


class SACPriorConfig(SACConfig):
    """`SACConfig` plus `.prior_mixture(...)`: the primitives' Gaussians and the target KL."""

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or SACPrior)
        self.prior_names: tuple[str, ...] = ()
        self.prior_means: list[list[float]] = []
        self.prior_stds: list[list[float]] = []
        self.target_kl_per_dim = 1.0

    def prior_mixture(
        self,
        *,
        primitives: Sequence[PrimitiveLike] = NotProvided,  # type: ignore[assignment]
        target_kl_per_dim: float = NotProvided,  # type: ignore[assignment]
    ) -> Self:
        """Set the prior's components and the KL the temperature aims at.

        Args:
            primitives: the domain's motion primitives (name, mean, std in action units), in
                the order of the `prior_logw` columns the env appends.
            target_kl_per_dim: target of E_s[KL(pi || prior)] per action dimension (nats).
        """
        if primitives is not NotProvided:
            self.prior_names = tuple(p.name for p in primitives)
            self.prior_means = [np.asarray(p.mean, float).tolist() for p in primitives]
            self.prior_stds = [np.asarray(p.std, float).tolist() for p in primitives]
        if target_kl_per_dim is not NotProvided:
            self.target_kl_per_dim = target_kl_per_dim
        return self

    def mixture(self) -> MixturePrior:
        """The prior's pre-tanh components (`platform/mixture_prior.py`)."""
        return MixturePrior.from_arrays(self.prior_names, np.asarray(self.prior_means), np.asarray(self.prior_stds))

    def validate(self) -> None:
        super().validate()
        if not self.prior_names:
            self._value_error("SAC-Prior needs motion primitives: call `.prior_mixture(primitives=...)`")
        if self.target_kl_per_dim <= 0:
            self._value_error("`target_kl_per_dim` in `.prior_mixture(...)` must be > 0")

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(module_class=SACPriorTorchRLModule, catalog_class=SACPriorCatalog)

    def get_default_learner_class(self) -> type:
        return SACPriorTorchLearner

    @property
    def _model_config_auto_includes(self) -> dict[str, Any]:
        return super()._model_config_auto_includes | {PRIOR_COMPONENTS: len(self.prior_names)}


class SACPriorTorchLearner(SACTorchLearner):
    """SAC's critic and actor losses with log pi replaced by log pi - log prior; alpha aims at a KL."""

    def build(self) -> None:
        super().build()
        self._prior: MixturePrior = self.config.mixture()

    def _compute_loss_for_module_continuous(self, *, module_id: str, config: SACPriorConfig,
                                            batch: dict[str, Any], fwd_out: dict[str, Any]) -> torch.Tensor:
        k = self._prior.n_components
        log_alpha = self.curr_log_alpha[module_id]
        alpha = log_alpha.exp().detach()

        # Soft target with the KL in place of the entropy (next state's own prior weights).
        kl_next = kl_sample(fwd_out[PRE_TANH_NEXT], *policy_gaussian(fwd_out[ACTION_DIST_INPUTS_NEXT]),
                            self._prior, batch[Columns.NEXT_OBS][:, -k:])
        not_done = 1.0 - batch[Columns.TERMINATEDS].float()
        target = (batch[Columns.REWARDS] + config.gamma ** batch["n_step"] * not_done
                  * (fwd_out["q_target_next"] - alpha * kl_next)).detach()
        huber = torch.nn.HuberLoss(reduction="none", delta=1.0)
        critic_loss = torch.mean(batch["weights"] * huber(fwd_out[QF_PREDS], target))
        td_error = (fwd_out[QF_PREDS] - target).abs()
        if config.twin_q:
            critic_twin_loss = torch.mean(batch["weights"] * huber(fwd_out[QF_TWIN_PREDS], target))
            td_error = 0.5 * (td_error + (fwd_out[QF_TWIN_PREDS] - target).abs())

        kl = kl_sample(fwd_out[PRE_TANH], *policy_gaussian(fwd_out[Columns.ACTION_DIST_INPUTS]),
                       self._prior, batch[Columns.OBS][:, -k:])
        actor_loss = torch.mean(alpha * kl - fwd_out["q_curr"])
        target_kl = config.target_kl_per_dim * fwd_out[PRE_TANH].shape[-1]
        alpha_loss = -torch.mean(log_alpha * (kl.detach() - target_kl))

        self.metrics.log_value(key=(module_id, TD_ERROR_KEY), value=td_error, reduce="item_series")
        self.metrics.log_dict({
            POLICY_LOSS_KEY: actor_loss, QF_LOSS_KEY: critic_loss, "alpha_loss": alpha_loss,
            "alpha_value": alpha[0], PRIOR_ALPHA_KEY: alpha[0], PRIOR_KL_KEY: kl.mean(), "target_kl": target_kl,
            LOGPS_KEY: fwd_out["logp_resampled"].mean(), QF_MEAN_KEY: fwd_out["q_curr"].mean(),
            QF_MAX_KEY: fwd_out["q_curr"].max(), QF_MIN_KEY: fwd_out["q_curr"].min(),
            TD_ERROR_MEAN_KEY: td_error.mean(),
        }, key=module_id, window=1)
        # `compute_gradients` steps each optimizer on its own loss.
        self._temp_losses[(module_id, POLICY_LOSS_KEY)] = actor_loss
        self._temp_losses[(module_id, QF_LOSS_KEY)] = critic_loss
        self._temp_losses[(module_id, "alpha_loss")] = alpha_loss
        total = actor_loss + critic_loss + alpha_loss
        if config.twin_q:
            self.metrics.log_value(key=(module_id, QF_TWIN_LOSS_KEY), value=critic_twin_loss, window=1)
            self._temp_losses[(module_id, QF_TWIN_LOSS_KEY)] = critic_twin_loss
            total = total + critic_twin_loss
        return total


class SACPrior(SAC):
    """SAC with an LLM motion-primitive prior; configure it with `SACPriorConfig`."""

    @classmethod
    def get_default_config(cls) -> SACPriorConfig:
        return SACPriorConfig()
