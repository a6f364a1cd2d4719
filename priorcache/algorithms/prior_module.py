"""The prior-aware RLModule shared by the *-Prior algorithms.

Reads the observations of `envs/prior_features.py` and scores each action slot by the match
of a state encoding and an action encoding (so a slot means "this command", whatever its
position), then adds the LLM prior:

    posterior logits = policy logits + w * log p_LLM(a|s),  masked to the real candidates,

i.e. pi(a|s) ∝ p_LLM(a|s)^w · exp(policy logits): posterior sampling with prior weight
w = 1/temperature. `w` lives in a buffer (`prior_weight`) so that it is synced to the env
runners with the weights; the learner lowers it as training proceeds.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule
from ray.rllib.utils.torch_utils import FLOAT_MIN

PRIOR_LOGP = "prior_logp"
POLICY_LOGITS = "policy_logits"


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, n_out))


class PriorPolicyModule(TorchRLModule, ValueFunctionAPI):
    """Candidate-scoring policy + value head, with the LLM prior folded into the logits.

    `model_config` keys: `hidden` (encoder width), `prior_weight` (initial w).
    """

    def setup(self) -> None:
        hidden = int(self.model_config.get("hidden", 128))
        dim = self.observation_space["state"].shape[0]
        self.state_encoder = _mlp(dim, hidden, hidden)
        self.action_encoder = _mlp(dim, hidden, hidden)
        self.value_head = _mlp(dim, hidden, 1)
        self._scale = hidden ** -0.5
        self.register_buffer("prior_weight", torch.tensor(float(self.model_config.get("prior_weight", 1.0))))

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        state = self.state_encoder(obs["state"])
        actions = self.action_encoder(obs["actions"])
        policy_logits = torch.einsum("bkh,bh->bk", actions, state) * self._scale
        mask = obs["action_mask"] > 0.5
        prior_logp = torch.where(mask, obs["prior_logp"], torch.zeros_like(obs["prior_logp"]))
        logits = policy_logits + self.prior_weight * prior_logp
        return {
            Columns.ACTION_DIST_INPUTS: torch.where(mask, logits, torch.full_like(logits, FLOAT_MIN)),
            POLICY_LOGITS: policy_logits,
        }

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        return self.value_head(batch[Columns.OBS]["state"]).squeeze(-1)


def masked_prior_logp(obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p_LLM over the slots with empty slots at FLOAT_MIN, the boolean mask)."""
    mask = obs["action_mask"] > 0.5
    logp = torch.where(mask, obs["prior_logp"], torch.full_like(obs["prior_logp"], FLOAT_MIN))
    return torch.log_softmax(logp, dim=-1), mask
