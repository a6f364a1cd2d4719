"""Discrete CQL and CQL-Prior: conservative Q-learning over action slots, from an offline dataset.

RLlib's CQL samples out-of-distribution actions from a Box action space, so it cannot learn
over a text env's command slots. This is CQL for discrete, masked action slots
(Kumar et al. 2020, CQL(H)), on RLlib's offline pipeline, with the LLM-prior variant of
Yan et al. 2024:

    A(s)  = the real candidates of s                                  (CQL)
          = the k candidates the LLM prior ranks highest in s         (CQL-Prior, k = top_k)
    a*    = argmax_{a' in A(s')} Q(s', a')                            (online net: double Q)
    y     = r + gamma · (1 - terminated) · Q_target(s', a*)
    L     = Huber(Q(s, a) - y) + cql_alpha · ( logsumexp_{a' in A(s) ∪ {a}} Q(s, a') - Q(s, a) )

with (s, a, r, s') from the dataset. The conservative term pushes Q down on the actions of A(s)
and up on the dataset's action; CQL-Prior takes it (and the max of the target) only over the
k actions the LLM proposes, so Q is asked to be right only where the prior puts its mass.
The dataset's action joins the logsumexp: without it, a data action outside the prior's top-k
got a constant upward push that only the Huber term (gradient at most 1) resisted, and its
Q settled about `cql_alpha` above its target (measured on the random TextWorld dataset: Q 1.1
for a command the prior gives p < 0.001, the greedy policy lost every episode). For plain CQL
the data action is always in A(s), so nothing changes there.
The policy acts among A(s) by pi(a|s) ∝ p_LLM(a|s)^w · exp(Q(s, a)/alpha) (`PriorQModule`,
shared with DQN-Prior): w = 0 is argmax Q (plain extraction), w > 0 adds the KL-to-prior
extraction of the posterior; plain CQL acts by Q alone over every candidate.

The prior is read from the dataset's observations (`prior_logp`, filled through the shared
cache when the dataset was recorded, `offline/dataset.py`): training asks no LLM. The target
network follows the online one by Polyak averaging (`tau`) after every update, as RLlib's
CQL does. The dataset is RLlib's `OfflineData` (`config.offline_data(...)`), read once and
held in memory (`offline_step.py`); each iteration makes `dataset_num_iters_per_learner`
updates on minibatches of `train_batch_size_per_learner` transitions drawn uniformly.

From plain Python::

    from priorcache.algorithms.cql_discrete import DiscreteCQLConfig
    from priorcache.envs.prior_features import feature_space
    from priorcache.offline.dataset import offline_input

    config = (
        DiscreteCQLConfig()
        .environment(observation_space=feature_space(32, 384), action_space=gym.spaces.Discrete(32))
        .offline_data(**offline_input(".cache/offline/textworld_cql_prior-medium"),
                      dataset_num_iters_per_learner=50)
        .conservative(cql_alpha=1.0, top_k=5, prior_weight=0.0)
    )
    algo = config.build_algo()
    print(algo.train())

`priorcache run experiments/textworld_cql_prior.yaml` builds this config (with online
evaluation in the env every iteration).
"""

from __future__ import annotations

from typing import Any, Self

import torch
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.algorithms.dqn import DQN, DQNConfig
from ray.rllib.algorithms.dqn.dqn_learner import QF_LOSS_KEY, QF_MEAN_KEY, TD_ERROR_MEAN_KEY
from ray.rllib.algorithms.dqn.torch.dqn_torch_learner import DQNTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.torch_utils import FLOAT_MIN
from torch import nn

from priorcache.algorithms.offline_step import InMemoryOfflineStep
from priorcache.algorithms.prior_module import candidate_mask
from priorcache.algorithms.prior_q_module import Q_VALUES, TARGET_NEXT_Q_VALUES, PriorQModule

NEXT_Q_VALUES = "qf_next_preds"
"""Q(s', .) of the online network (picks a* of the double-Q target)."""
CQL_LOSS_KEY = "cql_loss"
"""Learner metric: the conservative term (before `cql_alpha`)."""


class ConservativeQModule(PriorQModule):
    """`PriorQModule` whose train pass also gives the online Q(s', .) (double-Q target)."""

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        next_obs = batch[Columns.NEXT_OBS]
        with torch.no_grad():
            next_q, target_next = self.q_net(next_obs), self._target_q_net(next_obs)
        return {Q_VALUES: self.q_net(batch[Columns.OBS]), NEXT_Q_VALUES: next_q, TARGET_NEXT_Q_VALUES: target_next}


def cql_loss(q: torch.Tensor, next_q: torch.Tensor, target_next_q: torch.Tensor, actions: torch.Tensor,
             rewards: torch.Tensor, terminated: torch.Tensor, mask: torch.Tensor, next_mask: torch.Tensor,
             gamma: float, cql_alpha: float, huber: bool = True) -> dict[str, torch.Tensor]:
    """The loss of the module docstring, batch-mean; also its parts (`td`, `cql`, `q_data`, `td_error`).

    `mask`/`next_mask` are the action sets A(s)/A(s') (boolean, [B, K]); the data action is added
    to A(s) here. An empty A(s') (a final state without commands) bootstraps from 0.
    """
    q_data = q.gather(-1, actions[:, None]).squeeze(-1)
    mask = mask | nn.functional.one_hot(actions, q.shape[-1]).bool()
    best_next = torch.where(next_mask, next_q, torch.full_like(next_q, FLOAT_MIN)).argmax(-1, keepdim=True)
    next_value = target_next_q.gather(-1, best_next).squeeze(-1) * next_mask.any(-1)
    target = (rewards + gamma * (1.0 - terminated) * next_value).detach()
    loss_fn = nn.HuberLoss if huber else nn.MSELoss
    td = loss_fn(reduction="none")(q_data, target)
    conservative = torch.logsumexp(torch.where(mask, q, torch.full_like(q, FLOAT_MIN)), dim=-1) - q_data
    loss = td.mean() + cql_alpha * conservative.mean()
    return {"loss": loss, "td": td.mean(), "cql": conservative.mean(), "q_data": q_data.mean(),
            "td_error": (q_data - target).abs()}


class DiscreteCQLConfig(DQNConfig):
    """`DQNConfig` for offline discrete CQL; `.conservative(...)` sets the CQL and prior terms."""

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or DiscreteCQL)
        # Offline: no training env runners (RLlib's MARWIL/BC do the same); evaluation may still
        # play the env through `.evaluation(...)`.
        self._is_online = False
        self.cql_alpha = 1.0
        self.cql_top_k = 0
        self.prior_weight = 0.0
        self.q_temperature = 1.0
        # Polyak averaging after every update (RLlib's CQL does the same): offline there are no
        # sampled env steps to count `target_network_update_freq` in.
        self.tau = 0.01
        self.target_network_update_freq = 0
        self.dataset_num_iters_per_learner = 50
        # One `training_step` per iteration: DQN's 1,000 sampled steps per iteration would never
        # come offline, and RLlib would loop on training_step forever.
        self.min_sample_timesteps_per_iteration = 0
        self.min_train_timesteps_per_iteration = 0
        self.min_time_s_per_iteration = 0
        self.double_q = True

    def conservative(
        self,
        *,
        cql_alpha: float = NotProvided,  # type: ignore[assignment]
        top_k: int = NotProvided,  # type: ignore[assignment]
        prior_weight: float = NotProvided,  # type: ignore[assignment]
        q_temperature: float = NotProvided,  # type: ignore[assignment]
    ) -> Self:
        """Set the conservative term and the policy extraction.

        Args:
            cql_alpha: weight of logsumexp_{A(s)} Q - Q(s, a_data).
            top_k: 0: A(s) = every candidate (CQL); k > 0: the prior's top k (CQL-Prior).
            prior_weight: w of p_LLM^w · exp(Q/alpha) the policy acts by (0: Q alone).
            q_temperature: alpha of that posterior.
        """
        for name, value in (("cql_alpha", cql_alpha), ("cql_top_k", top_k), ("prior_weight", prior_weight),
                            ("q_temperature", q_temperature)):
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    def validate(self) -> None:
        super().validate()
        if self.cql_alpha < 0:
            self._value_error("`cql_alpha` in `.conservative(...)` must be >= 0")
        if self.cql_top_k < 0:
            self._value_error("`top_k` in `.conservative(...)` must be >= 0 (0 = every candidate)")
        if self.q_temperature <= 0:
            self._value_error("`q_temperature` in `.conservative(...)` must be > 0")
        if self.enable_rl_module_and_learner and not self.input_:
            self._value_error("discrete CQL trains offline: give the dataset with `.offline_data(input_=...)`")

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(module_class=ConservativeQModule)

    def get_default_learner_class(self) -> type:
        return DiscreteCQLTorchLearner

    @property
    def _model_config_auto_includes(self) -> dict[str, Any]:
        return super()._model_config_auto_includes | {
            "q_temperature": self.q_temperature, "prior_top_k": self.cql_top_k, "prior_weight": self.prior_weight,
        }


class DiscreteCQLTorchLearner(DQNTorchLearner):
    """The loss of `cql_loss`; target-network updates from RLlib's DQN learner."""

    def compute_loss_for_module(self, *, module_id: str, config: DiscreteCQLConfig, batch: dict[str, Any],
                                fwd_out: dict[str, Any]) -> torch.Tensor:
        out = cql_loss(
            q=fwd_out[Q_VALUES], next_q=fwd_out[NEXT_Q_VALUES], target_next_q=fwd_out[TARGET_NEXT_Q_VALUES],
            actions=batch[Columns.ACTIONS].long(), rewards=batch[Columns.REWARDS].float(),
            terminated=batch[Columns.TERMINATEDS].float(),
            mask=candidate_mask(batch[Columns.OBS], config.cql_top_k),
            next_mask=candidate_mask(batch[Columns.NEXT_OBS], config.cql_top_k),
            gamma=config.gamma, cql_alpha=config.cql_alpha, huber=config.td_error_loss_fn == "huber",
        )
        self.metrics.log_dict(
            {QF_LOSS_KEY: out["loss"], QF_MEAN_KEY: out["q_data"], TD_ERROR_MEAN_KEY: out["td_error"].mean(),
             CQL_LOSS_KEY: out["cql"]},
            key=module_id, window=1,
        )
        return out["loss"]


class DiscreteCQL(InMemoryOfflineStep, DQN):
    """Offline discrete CQL / CQL-Prior; configure it with `DiscreteCQLConfig`."""

    @classmethod
    def get_default_config(cls) -> AlgorithmConfig:
        return DiscreteCQLConfig()
