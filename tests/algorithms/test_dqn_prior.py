"""DQN-Prior: posterior over the prior's top-k, the prior-weighted TD target, and learning on a tiny game."""

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from priorcache.algorithms.prior_q_module import Q_VALUES, TARGET_NEXT_LOGITS, TARGET_NEXT_Q_VALUES, PriorQModule
from priorcache.envs.prior_features import feature_space

K, D = 5, 8
REPO = Path(__file__).resolve().parents[2]


def make_module(**config) -> PriorQModule:
    module = PriorQModule(observation_space=feature_space(K, D), action_space=gym.spaces.Discrete(K),
                          model_config={"hidden": 16, "prior_weight": 1.0, "q_temperature": 0.5, "prior_top_k": 2,
                                        **config})
    module.make_target_networks()
    return module


def obs(prior=(0.5, 0.3, 0.15, 0.05), seed=0):
    rng = np.random.default_rng(seed)
    mask = np.zeros(K, np.float32)
    mask[:len(prior)] = 1
    logp = np.zeros(K, np.float32)
    logp[:len(prior)] = np.log(prior)
    values = {"state": rng.normal(size=D), "actions": rng.normal(size=(K, D)), "action_mask": mask, "prior_logp": logp}
    return {k: torch.as_tensor(np.asarray(v, np.float32))[None] for k, v in values.items()}


def test_acts_by_prior_weighted_q_among_the_priors_top_k():
    module = make_module()
    o = obs()
    logits = module.forward_exploration({Columns.OBS: o})[Columns.ACTION_DIST_INPUTS][0]
    q = module.q_net(o)[0]
    probs = torch.softmax(logits, -1)
    assert torch.all(probs[2:] == 0), "only the prior's top-2 candidates may be chosen"
    expected = torch.softmax(q[:2] / 0.5 + torch.log(torch.tensor([0.5, 0.3])), -1)
    torch.testing.assert_close(probs[:2], expected)


def test_train_pass_gives_target_q_and_target_posterior_of_the_next_state():
    module = make_module(prior_top_k=0)
    out = module.forward_train({Columns.OBS: obs(seed=1), Columns.NEXT_OBS: obs(seed=2)})
    torch.testing.assert_close(out[TARGET_NEXT_Q_VALUES], module.q_net(obs(seed=2)))
    assert out[Q_VALUES].shape == (1, K)
    next_pi = torch.softmax(out[TARGET_NEXT_LOGITS], -1)[0]
    assert next_pi[4] == 0 and torch.isclose(next_pi[:4].sum(), torch.tensor(1.0))
