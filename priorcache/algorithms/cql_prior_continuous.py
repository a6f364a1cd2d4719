"""Continuous CQL and CQL-Prior: RLlib's CQL on SAC-Prior's network, offline, with the LLM's mixture prior.

RLlib's CQL (`ray.rllib.algorithms.cql`, Kumar et al. 2020, CQL(H)) is SAC plus a conservative
term on the critics:

    cql = logsumexp over 3N samples of [ Q(s, a_i) - log mu_i(a_i) ]  -  Q(s, a_data)

with N = `num_actions` samples from each of three proposals mu: uniform in the action box, the
policy at s and the policy at s'. Subtracting log mu(a) is the importance weight that makes
the sum an estimate of log ∫ exp Q(s, a) da whatever the proposal. Two algorithms here:

- `ContinuousCQLConfig` (`algorithm.name=cql_continuous`): RLlib's CQL learner unchanged, on
  SAC-Prior's module (actor and critics read the raw observation; the prior columns the
  dataset carries are ignored). The no-prior baseline.
- `CQLPriorConfig` (`algorithm.name=cql_prior_continuous`), two changes, both as
  substitutions into RLlib's own loss (`CQLPriorTorchLearner`), so the rest of RLlib's CQL
  (BC warm-up, twin critics, deterministic backup, the optimizers) is kept as it is:

  (a) the N "random" out-of-distribution actions are drawn from the LLM's prior mixture of the
      state (its log-weights are the observation's last K columns, recorded through the
      cache with the dataset: no LLM call in training) *instead of* uniformly in the box, and
      their term is Q(s, a) - log prior(a|s) (the prior's density over squashed actions, tanh
      Jacobian included) in place of Q(s, a) - log 2^-D. Instead of, not mixed with: the
      estimand is unchanged (the same logsumexp over the whole action space, each proposal
      importance-weighted by its own density), so a mixture would only add a third proposal
      to the two policy ones; what changes is *where* Q is pushed down, on the actions the
      prior proposes rather than on uniform torques that neither the data nor the prior
      contain. The policy's own samples at s and s' stay, so the actor's actions are still
      covered wherever the prior is not.
  (b) the actor's entropy bonus becomes the KL to the prior, as in SAC-Prior: every
      log pi(a|s) of the actor, temperature and (non-deterministic) backup terms becomes the
      one-sample log pi(u|s) - log prior(u|s) of `platform/mixture_prior.kl_sample` at the
      policy's pre-tanh sample, and the target entropy becomes -`target_kl`, so alpha is the
      Lagrange multiplier of E_s[KL(pi || prior)] <= target_kl exactly as in
      `sac_prior.py`. The importance weights of the policy-sampled conservative terms stay
      log pi (they weight the proposal the actions came from, not the objective).

Both read the dataset once into memory (`offline_step.py`) and evaluate online: CQL-Prior's
evaluation env asks the cache for the prior (the policy ignores it, the metrics count it),
plain CQL's serves the uniform prior without an LLM.

From plain Python (after `ray.init()`; the spaces are those of `ContinuousPriorWrapper`)::

    from priorcache.algorithms.cql_prior_continuous import CQLPriorConfig
    from priorcache.envs.motion_primitives import primitives
    from priorcache.offline.dataset import offline_input

    prims = primitives("halfcheetah")
    config = (
        CQLPriorConfig()
        .environment(observation_space=obs_space, action_space=act_space)
        .offline_data(**offline_input(".cache/offline/halfcheetah_cql_prior-medium"),
                      dataset_num_iters_per_learner=200)
        .prior_mixture(primitives=prims, target_kl_per_dim=1.0)
    )
    print(config.build_algo().train())

`priorcache run experiments/halfcheetah_cql_prior.yaml` builds it through `algorithms/registry.py`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from ray.rllib.algorithms.cql import CQL, CQLConfig
from ray.rllib.algorithms.cql.torch.cql_torch_learner import CQLTorchLearner
from ray.rllib.algorithms.cql.torch.default_cql_torch_rl_module import DefaultCQLTorchRLModule
from ray.rllib.algorithms.sac.sac_learner import ACTION_DIST_INPUTS_NEXT, QF_PREDS, QF_TWIN_PREDS
from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import DefaultSACTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from priorcache.algorithms.offline_step import InMemoryOfflineStep
from priorcache.algorithms.ppo_prior import PRIOR_KL_KEY
from priorcache.algorithms.sac_prior import (
    PRE_TANH, PRE_TANH_NEXT, PRIOR_ALPHA_KEY, PRIOR_COMPONENTS, SACPriorCatalog, SACPriorConfig,
    SACPriorTorchRLModule, policy_gaussian,
)
from priorcache.platform.mixture_prior import MixturePrior, kl_sample, tanh_log_jacobian

OOD_PROPOSAL = "cql_ood_proposal"
"""model_config key: where the conservative term's "random" actions come from: uniform or prior."""
PRIOR_MEANS, PRIOR_STDS = "prior_means", "prior_stds"
"""model_config keys: the primitives' means and stds in action units (K, D), for the prior proposal."""
OOD_LOGP = "logps_rand_repeat"
"""fwd_out key: log density (squashed actions) of the out-of-distribution actions under their proposal."""


def uniform_log_density(action_dim: int) -> float:
    """log of the uniform density on [-1, 1]^D, the density RLlib's CQL loss gives its random actions."""
    return -action_dim * math.log(2.0)


class ConservativeSACPriorModule(SACPriorTorchRLModule, DefaultCQLTorchRLModule):
    """SAC-Prior's module (raw observation, pre-tanh samples) with CQL's repeated-action Q values.

    The N out-of-distribution actions per state come from `model_config[OOD_PROPOSAL]`: "uniform"
    (RLlib's CQL) or "prior" (the state's mixture, its log-weights read from the observation).
    """

    def setup(self) -> None:
        super().setup()
        self._prior: MixturePrior | None = None
        if self.model_config.get(OOD_PROPOSAL, "uniform") == "prior":
            means = self.model_config[PRIOR_MEANS]
            self._prior = MixturePrior.from_arrays([str(i) for i in range(len(means))], means,
                                                   self.model_config[PRIOR_STDS])

    def ood_actions(self, obs: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(B·n, D) actions, n per row of the full observation `obs` in row order, and their log density
        under the proposal (B·n,)."""
        d = self.action_space.shape[0]
        if self._prior is None:
            actions = 2.0 * torch.rand(obs.shape[0] * n, d, device=obs.device) - 1.0
            return actions, torch.full((actions.shape[0],), uniform_log_density(d), device=obs.device)
        logw = obs[:, -self.model_config[PRIOR_COMPONENTS]:].repeat_interleave(n, dim=0)
        u = self._prior.sample_pre_tanh(logw)
        return torch.tanh(u), self._prior.log_prob_pre_tanh(u, logw) - tanh_log_jacobian(u)

    def _forward_train(self, batch: dict[str, Any]) -> dict[str, Any]:
        # SAC-Prior's train pass (dispatched by RLlib's SAC module to `_forward_train_continuous`),
        # then the repeated-action Q values of RLlib's CQL module, on the raw observation and with
        # this module's proposal. The policy is frozen here (RLlib's CQL module does the same):
        # the conservative term trains the critics only.
        out = DefaultSACTorchRLModule._forward_train(self, batch)
        raw = self._raw(batch)
        n, size = self.model_config["num_actions"], batch[Columns.OBS].shape[0]
        policy = [*self.pi_encoder.parameters(), *self.pi.parameters()]
        for p in policy:
            p.requires_grad_(False)
        actions, logp = self.ood_actions(batch[Columns.OBS], n)
        rand = self._repeat_actions(raw[Columns.OBS], actions)
        out["actions_rand_repeat"], out["q_rand_repeat"] = rand[Columns.ACTIONS], rand[QF_PREDS]
        out[OOD_LOGP] = logp.view(size, n, 1)
        if self.twin_q:
            out["q_twin_rand_repeat"] = rand[QF_TWIN_PREDS]
        for name, obs in (("curr", raw[Columns.OBS]), ("next", raw[Columns.NEXT_OBS])):
            sampled = self._repeat_actions(obs)
            out[f"actions_{name}_repeat"] = sampled[Columns.ACTIONS]
            out[f"logps_{name}_repeat"] = sampled[Columns.ACTION_LOGP]
            out[f"q_{name}_repeat"] = sampled[QF_PREDS]
            if self.twin_q:
                out[f"q_twin_{name}_repeat"] = sampled[QF_TWIN_PREDS]
        for p in policy:
            p.requires_grad_(True)
        return out


class ContinuousCQL(InMemoryOfflineStep, CQL):
    """RLlib's CQL with the in-memory offline step; configure it with `ContinuousCQLConfig`/`CQLPriorConfig`."""

    @classmethod
    def get_default_config(cls) -> ContinuousCQLConfig:
        return ContinuousCQLConfig()


class ContinuousCQLConfig(CQLConfig):
    """RLlib's `CQLConfig` on SAC-Prior's module, trained from memory (plain CQL, no prior).

    The module drops the observation's last `model_config[PRIOR_COMPONENTS]` columns (give it
    with `.rl_module(model_config=...)`); `CQLPriorConfig` sets it from its primitives.
    """

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or ContinuousCQL)
        # Offline: no training env runners; evaluation may still play the env (`.evaluation`).
        self._is_online = False
        # One `training_step` (`dataset_num_iters_per_learner` updates) per iteration.
        self.min_sample_timesteps_per_iteration = 0
        self.min_train_timesteps_per_iteration = 0
        self.min_time_s_per_iteration = 0
        self.dataset_num_iters_per_learner = 100

    def validate(self) -> None:
        super().validate()
        if self.enable_rl_module_and_learner and not self.input_:
            self._value_error("continuous CQL trains offline: give the dataset with `.offline_data(input_=...)`")

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(module_class=ConservativeSACPriorModule, catalog_class=SACPriorCatalog)


class CQLPriorConfig(ContinuousCQLConfig, SACPriorConfig):
    """`ContinuousCQLConfig` plus SAC-Prior's `.prior_mixture(...)`: prior proposal and KL actor loss."""

    def get_default_learner_class(self) -> type:
        return CQLPriorTorchLearner

    @property
    def _model_config_auto_includes(self) -> dict[str, Any]:
        return super()._model_config_auto_includes | {
            OOD_PROPOSAL: "prior", PRIOR_MEANS: self.prior_means, PRIOR_STDS: self.prior_stds}


class CQLPriorTorchLearner(CQLTorchLearner):
    """RLlib's CQL loss with the substitutions (a) and (b) of the module docstring."""

    def build(self) -> None:
        super().build()
        self._prior: MixturePrior = self.config.mixture()

    def _get_target_entropy(self, module_id: str) -> float:
        # alpha's loss is -log(alpha) · (log pi + target_entropy); with log pi -> KL this is
        # SAC-Prior's -log(alpha) · (KL - target_kl).
        config = self.config.get_config_for_module(module_id)
        return -config.target_kl_per_dim * self.module[module_id].action_space.shape[0]

    def compute_loss_for_module(self, *, module_id: str, config: CQLPriorConfig, batch: dict[str, Any],
                                fwd_out: dict[str, Any]) -> torch.Tensor:
        k = self._prior.n_components
        kl = kl_sample(fwd_out[PRE_TANH], *policy_gaussian(fwd_out[Columns.ACTION_DIST_INPUTS]),
                       self._prior, batch[Columns.OBS][:, -k:])
        kl_next = kl_sample(fwd_out[PRE_TANH_NEXT], *policy_gaussian(fwd_out[ACTION_DIST_INPUTS_NEXT]),
                            self._prior, batch[Columns.NEXT_OBS][:, -k:])
        # RLlib's loss takes Q(s, a) - log 2^-D for the random actions; adding log 2^-D - log mu(a)
        # turns it into Q(s, a) - log mu(a), mu the prior proposal.
        shift = uniform_log_density(fwd_out[PRE_TANH].shape[-1]) - fwd_out[OOD_LOGP]
        substituted = {**fwd_out, "logp_resampled": kl, "logp_next_resampled": kl_next,
                       "q_rand_repeat": fwd_out["q_rand_repeat"] + shift}
        if config.twin_q:
            substituted["q_twin_rand_repeat"] = fwd_out["q_twin_rand_repeat"] + shift
        loss = super().compute_loss_for_module(module_id=module_id, config=config, batch=batch,
                                               fwd_out=substituted)
        alpha = self.curr_log_alpha[module_id].detach().exp()[0]
        self.metrics.log_dict({PRIOR_KL_KEY: kl.detach().mean(), PRIOR_ALPHA_KEY: alpha}, key=module_id, window=1)
        return loss
