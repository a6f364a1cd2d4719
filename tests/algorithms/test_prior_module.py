"""PriorPolicyModule: posterior logits = policy logits + w * prior, masked; and the trust schedule."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from priorcache.algorithms.prior_module import POLICY_LOGITS, PriorPolicyModule, masked_prior_logp
from priorcache.algorithms.prior_trust import PriorTrustSchedule
from priorcache.envs.prior_features import feature_space

K, D = 4, 8


def make_module(prior_weight: float) -> PriorPolicyModule:
    return PriorPolicyModule(observation_space=feature_space(K, D), action_space=gym.spaces.Discrete(K),
                             model_config={"hidden": 16, "prior_weight": prior_weight})


def batch(prior=(0.7, 0.2, 0.1), n_real=3):
    rng = np.random.default_rng(0)
    mask = np.zeros(K, np.float32)
    mask[:n_real] = 1
    logp = np.zeros(K, np.float32)
    logp[:n_real] = np.log(prior)
    obs = {"state": rng.normal(size=D), "actions": rng.normal(size=(K, D)), "action_mask": mask, "prior_logp": logp}
    return {Columns.OBS: {k: torch.as_tensor(np.asarray(v, np.float32))[None] for k, v in obs.items()}}


def test_posterior_adds_weighted_prior_and_masks_empty_slots():
    module = make_module(prior_weight=2.0)
    out = module.forward_inference(batch())
    logits, policy = out[Columns.ACTION_DIST_INPUTS][0], out[POLICY_LOGITS][0]
    expected = policy[:3] + 2.0 * torch.log(torch.tensor([0.7, 0.2, 0.1]))
    torch.testing.assert_close(logits[:3], expected)
    assert torch.softmax(logits, -1)[3] == 0.0


def test_zero_weight_ignores_the_prior():
    module = make_module(prior_weight=0.0)
    out = module.forward_inference(batch())
    torch.testing.assert_close(out[Columns.ACTION_DIST_INPUTS][0][:3], out[POLICY_LOGITS][0][:3])


def test_prior_weight_is_in_the_state_dict_so_env_runners_receive_it():
    module = make_module(prior_weight=1.0)
    module.prior_weight.fill_(0.3)
    other = make_module(prior_weight=1.0)
    other.set_state(module.get_state())
    assert float(other.prior_weight) == pytest.approx(0.3)


def test_masked_prior_is_normalised_over_real_candidates():
    logp, mask = masked_prior_logp(batch(prior=(0.5, 0.25, 0.25))[Columns.OBS])
    probs = logp.exp()[0]
    torch.testing.assert_close(probs[:3], torch.tensor([0.5, 0.25, 0.25]))
    assert mask[0].tolist() == [True, True, True, False]


def test_trust_schedule_decays_linearly_then_holds():
    s = PriorTrustSchedule(weight_start=1.0, weight_end=0.2, kl_coeff=0.1, decay_steps=100)
    assert s.weight(0) == 1.0 and s.weight(50) == pytest.approx(0.6) and s.weight(500) == pytest.approx(0.2)
    assert s.kl_coeff_at(50) == pytest.approx(0.06)
