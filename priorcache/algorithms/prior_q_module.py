"""The Q-network RLModule of DQN-Prior: candidate Q-values, a target copy, posterior actions.

    Q(s, a)  = CandidateScorer(s, a)                       (same encoders as PPO-Prior's policy)
    pi(a|s) ∝ p_LLM(a|s)^w · exp(Q(s, a) / alpha)  over the prior's top-k candidates

Acting (exploration and inference) samples pi through RLlib's default action sampling from
`ACTION_DIST_INPUTS`, so the prior does the exploring that epsilon-greedy does in plain DQN,
and evaluation reads the same logits as for PPO-Prior. The train pass adds what the
DQN-Prior learner needs: Q(s, .), and target-network Q(s', .) with the logits of pi(.|s').
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.utils import make_target_network
from ray.rllib.core.rl_module.apis import QNetAPI, TargetNetworkAPI
from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule

from priorcache.algorithms.prior_module import CandidateScorer, posterior_logits

Q_VALUES = "qf_preds"
"""Q(s, .) of the online network (RLlib DQN's key)."""
TARGET_NEXT_Q_VALUES = "qf_target_next_preds"
"""Q(s', .) of the target network (RLlib DQN's key)."""
TARGET_NEXT_LOGITS = "target_next_posterior_logits"
"""Posterior logits of pi(.|s') under the target network (the TD target's weights)."""


class PriorQModule(TorchRLModule, QNetAPI, TargetNetworkAPI):
    """Candidate Q-network with the LLM prior folded into its action distribution.

    `model_config` keys: `hidden` (encoder width), `prior_weight` (initial w), `q_temperature`
    (alpha), `prior_top_k` (k; 0 = every candidate).
    """

    def setup(self) -> None:
        hidden = int(self.model_config.get("hidden", 128))
        self.q_net = CandidateScorer(self.observation_space["state"].shape[0], hidden)
        self.q_temperature = float(self.model_config.get("q_temperature", 0.2))
        self.top_k = int(self.model_config.get("prior_top_k", 0))
        self.register_buffer("prior_weight", torch.tensor(float(self.model_config.get("prior_weight", 1.0))))

    def _posterior(self, q_values: torch.Tensor, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return posterior_logits(q_values, obs, self.prior_weight, self.q_temperature, self.top_k)

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        return {Columns.ACTION_DIST_INPUTS: self._posterior(self.q_net(obs), obs)}

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        next_obs = batch[Columns.NEXT_OBS]
        with torch.no_grad():
            target_next = self._target_q_net(next_obs)
        return {
            Q_VALUES: self.q_net(batch[Columns.OBS]),
            TARGET_NEXT_Q_VALUES: target_next,
            TARGET_NEXT_LOGITS: self._posterior(target_next, next_obs),
        }

    def compute_q_values(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {Q_VALUES: self.q_net(batch[Columns.OBS])}

    def make_target_networks(self) -> None:
        self._target_q_net = make_target_network(self.q_net)

    def get_target_network_pairs(self) -> list[tuple[Any, Any]]:
        return [(self.q_net, self._target_q_net)]

    def forward_target(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {Q_VALUES: self._target_q_net(batch[Columns.OBS])}
