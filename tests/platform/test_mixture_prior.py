"""The motion-primitive mixture prior against closed forms: Gaussian log-densities, Gaussian KL."""

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from ray.rllib.core.distribution.torch.torch_distribution import TorchSquashedGaussian

from priorcache.platform.mixture_prior import MixturePrior, kl_sample


@dataclass(frozen=True)
class Prim:
    name: str
    mean: np.ndarray
    std: np.ndarray


def one(mean, std) -> MixturePrior:
    return MixturePrior.from_primitives([Prim("p", np.asarray(mean, float), np.asarray(std, float))])


def test_one_component_is_a_diagonal_gaussian_in_pre_tanh_space():
    prior = one([0.5, -0.2, 0.0], [0.3, 0.1, 0.5])
    u = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    expected = torch.distributions.Normal(prior.means, prior.stds).log_prob(u).sum(-1)
    torch.testing.assert_close(prior.log_prob_pre_tanh(u, torch.zeros(64, 1)), expected)
    # Pre-tanh component: atanh of the primitive's mean, its std scaled by d atanh/da.
    torch.testing.assert_close(prior.means[0], torch.atanh(torch.tensor([0.5, -0.2, 0.0])))
    torch.testing.assert_close(prior.stds[0], torch.tensor([0.3 / 0.75, 0.1 / 0.96, 0.5]))


def test_squashed_density_is_rllibs_squashed_gaussian():
    prior = one([0.3, -0.6], [0.2, 0.4])
    action = torch.tensor([[0.1, -0.5], [0.9, 0.0], [-0.99, 0.7]])
    rllib = TorchSquashedGaussian(loc=prior.means, scale=prior.stds)
    torch.testing.assert_close(prior.log_prob(action, torch.zeros(3, 1)), rllib.logp(action), rtol=1e-4, atol=1e-4)


def test_mixture_log_density_is_the_log_of_the_weighted_sum():
    prior = MixturePrior.from_primitives([Prim("a", np.array([0.5]), np.array([0.2])),
                                          Prim("b", np.array([-0.5]), np.array([0.4]))])
    logw = torch.log(torch.tensor([[0.7, 0.3], [0.1, 0.9]]))
    u = torch.tensor([[0.2], [-0.4]])

    def normal(x, m, s):
        return math.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))

    m, s = prior.means[:, 0].tolist(), prior.stds[:, 0].tolist()
    expected = [math.log(0.7 * normal(0.2, m[0], s[0]) + 0.3 * normal(0.2, m[1], s[1])),
                math.log(0.1 * normal(-0.4, m[0], s[0]) + 0.9 * normal(-0.4, m[1], s[1]))]
    torch.testing.assert_close(prior.log_prob_pre_tanh(u, logw), torch.tensor(expected))
    # Unnormalised scores give the same mixture (they are log-softmaxed).
    torch.testing.assert_close(prior.log_prob_pre_tanh(u, logw + 3.0), torch.tensor(expected))


def test_squashed_mixture_integrates_to_one_over_the_action_box():
    prior = MixturePrior.from_primitives([Prim("a", np.array([0.9]), np.array([0.3])),
                                          Prim("b", np.array([-0.3]), np.array([0.2]))])
    a = torch.linspace(-1 + 1e-6, 1 - 1e-6, 200_001, dtype=torch.float64)[:, None]
    density = prior.log_prob(a.float(), torch.log(torch.tensor([[0.4, 0.6]])).expand(len(a), 2)).double().exp()
    assert torch.trapezoid(density, a[:, 0]).item() == pytest.approx(1.0, abs=2e-3)


def test_sampled_kl_matches_the_closed_form_kl_of_two_gaussians():
    prior = one([0.4, -0.3], [0.3, 0.5])
    mean, std = torch.tensor([[0.1, 0.2]]), torch.tensor([[0.5, 0.8]])
    n = 200_000
    u = mean + std * torch.randn(n, 2, generator=torch.Generator().manual_seed(1))
    estimate = kl_sample(u, mean.expand(n, 2), std.expand(n, 2), prior, torch.zeros(n, 1)).mean()
    m, s = prior.means, prior.stds
    closed = (torch.log(s / std) + (std**2 + (mean - m) ** 2) / (2 * s**2) - 0.5).sum()
    assert estimate.item() == pytest.approx(closed.item(), rel=0.01)


def test_kl_to_itself_is_zero_and_gradients_reach_the_policy():
    prior = one([0.2], [0.3])
    mean = prior.means.clone().requires_grad_(True)
    std = prior.stds.clone()
    u = mean + std * torch.randn(1000, 1, generator=torch.Generator().manual_seed(2))
    kl = kl_sample(u, mean.expand(1000, 1), std.expand(1000, 1), prior, torch.zeros(1000, 1))
    torch.testing.assert_close(kl, torch.zeros(1000), atol=1e-5, rtol=0)
    (kl + u.sum(-1)).mean().backward()
    assert mean.grad is not None


def test_samples_stay_in_the_box_and_follow_the_weights():
    prior = MixturePrior.from_primitives([Prim("fwd", np.array([0.8]), np.array([0.05])),
                                          Prim("back", np.array([-0.8]), np.array([0.05]))])
    logw = torch.log(torch.tensor([[0.8, 0.2]])).expand(5000, 2)
    a = prior.sample(logw, torch.Generator().manual_seed(3))
    assert a.abs().max() < 1
    assert (a > 0).float().mean().item() == pytest.approx(0.8, abs=0.03)


def test_rejects_a_non_positive_std():
    with pytest.raises(ValueError, match="std <= 0"):
        one([0.0], [0.0])
