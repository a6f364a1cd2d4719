"""The prior-aware RLModule parts shared by the *-Prior algorithms.

Every *-Prior module reads the observations of `envs/prior_features.py` and scores each
action slot by the match of a state encoding and an action encoding (`CandidateScorer`, so
a slot means "this command", whatever its position), then folds in the LLM prior
(`posterior_logits`):

    posterior logits = scores / alpha + w * log p_LLM(a|s),  masked to the real candidates,

i.e. pi(a|s) ∝ p_LLM(a|s)^w · exp(scores/alpha): posterior sampling with prior weight w.
PPO-Prior's scores are policy logits (alpha = 1), DQN-Prior's are Q-values. `w` lives in a
buffer (`prior_weight`) so that it is synced to the env runners with the weights; the
learner lowers it as training proceeds.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule
from ray.rllib.utils.torch_utils import FLOAT_MIN

POLICY_LOGITS = "policy_logits"


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, n_out))


class CandidateScorer(nn.Module):
    """One score per action slot: <state encoder(s), action encoder(a)> / sqrt(hidden)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.state_encoder = _mlp(dim, hidden, hidden)
        self.action_encoder = _mlp(dim, hidden, hidden)
        self._scale = hidden ** -0.5

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        state = self.state_encoder(obs["state"])
        actions = self.action_encoder(obs["actions"])
        return torch.einsum("bkh,bh->bk", actions, state) * self._scale


def posterior_logits(scores: torch.Tensor, obs: dict[str, torch.Tensor], prior_weight: torch.Tensor,
                     alpha: float = 1.0, top_k: int = 0) -> torch.Tensor:
    """scores / alpha + w * log p_LLM, FLOAT_MIN outside the candidates.

    With `top_k` > 0 the candidates are only the k slots the prior ranks highest (the LLM
    "proposes" k actions, as in DQN-Prior); 0 keeps every real candidate.
    """
    mask = candidate_mask(obs, top_k)
    prior_logp = torch.where(mask, obs["prior_logp"], torch.zeros_like(obs["prior_logp"]))
    logits = scores / alpha + prior_weight * prior_logp
    return torch.where(mask, logits, torch.full_like(logits, FLOAT_MIN))


def candidate_mask(obs: dict[str, torch.Tensor], top_k: int = 0) -> torch.Tensor:
    """Boolean mask of the real candidates, or of the `top_k` the prior ranks highest among them."""
    mask = obs["action_mask"] > 0.5
    if top_k <= 0 or top_k >= mask.shape[-1]:
        return mask
    ranked = torch.where(mask, obs["prior_logp"], torch.full_like(obs["prior_logp"], FLOAT_MIN))
    top = torch.zeros_like(mask)
    top.scatter_(-1, ranked.topk(top_k, dim=-1).indices, True)
    return mask & top


class PriorPolicyModule(TorchRLModule, ValueFunctionAPI):
    """Candidate-scoring policy + value head, with the LLM prior folded into the logits.

    `model_config` keys: `hidden` (encoder width), `prior_weight` (initial w).
    """

    def setup(self) -> None:
        hidden = int(self.model_config.get("hidden", 128))
        dim = self.observation_space["state"].shape[0]
        self.scorer = CandidateScorer(dim, hidden)
        self.value_head = _mlp(dim, hidden, 1)
        self.register_buffer("prior_weight", torch.tensor(float(self.model_config.get("prior_weight", 1.0))))

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        policy_logits = self.scorer(obs)
        return {
            Columns.ACTION_DIST_INPUTS: posterior_logits(policy_logits, obs, self.prior_weight),
            POLICY_LOGITS: policy_logits,
        }

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        return self.value_head(batch[Columns.OBS]["state"]).squeeze(-1)


def masked_prior_logp(obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p_LLM over the slots with empty slots at FLOAT_MIN, the boolean mask)."""
    mask = obs["action_mask"] > 0.5
    logp = torch.where(mask, obs["prior_logp"], torch.full_like(obs["prior_logp"], FLOAT_MIN))
    return torch.log_softmax(logp, dim=-1), mask
