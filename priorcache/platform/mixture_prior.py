"""The hybrid prior over continuous actions: a Gaussian mixture over motion primitives.

The LLM scores a domain's motion primitives by name given the state text; its log-probs
`logw` (K,) weight K diagonal Gaussians, one per primitive. This module holds the mixture's
maths (batched torch): its log-density, sampling, and the sampled KL(pi || prior) that
SAC-Prior's actor loss uses. It never asks the LLM (the env wrapper does,
`envs/continuous_prior.py`) and knows nothing of RLlib.

How the tanh-squashed action space is handled. SAC acts by a = tanh(u), u ~ N(mu, sigma)
(RLlib's `TorchSquashedGaussian`, bounds [-1, 1]). The prior is defined the same way: a
mixture in the *pre-tanh* space u, pushed through tanh. Both densities over the squashed
action a then carry the same Jacobian |det d tanh(u)/du|, which cancels in their ratio:

    log pi(a) - log prior(a) = log N(u; mu, sigma) - log sum_k w_k N(u; m_k, s_k)

so KL(pi || prior) over actions equals the KL over pre-tanh samples and is estimated
without atanh (unstable near +-1) and without clipping: the prior has all its mass in
(-1, 1) like the policy. A primitive is given in action units (mean in [-1, 1], std > 0);
its pre-tanh component is m = atanh(mean) and s = std / (1 - mean^2) (the first-order
change of variables, so tanh(N(m, s)) has about the primitive's mean and spread), with the
mean clipped to +-`MAX_MEAN` so that a primitive at the bound stays finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
import torch

MAX_MEAN = 0.95
"""Primitive means are clipped to [-MAX_MEAN, MAX_MEAN] before atanh (atanh(0.95) = 1.83)."""
_LOG_2PI = math.log(2.0 * math.pi)


class PrimitiveLike(Protocol):
    """What a motion primitive offers (`envs/motion_primitives.Primitive`)."""

    name: str
    mean: np.ndarray
    std: np.ndarray


def diag_gaussian_logpdf(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag(std^2)), summed over the last axis (broadcasting)."""
    z = (x - mean) / std
    return (-0.5 * z * z - torch.log(std) - 0.5 * _LOG_2PI).sum(-1)


@dataclass(frozen=True)
class MixturePrior:
    """K diagonal Gaussians in pre-tanh space; the weights come per state (the LLM's log-probs).

    `means` and `stds` are (K, D) tensors in pre-tanh units; build it from primitives with
    `from_primitives`.
    """

    names: tuple[str, ...]
    means: torch.Tensor
    stds: torch.Tensor

    @classmethod
    def from_primitives(cls, primitives: Sequence[PrimitiveLike]) -> MixturePrior:
        """Pre-tanh components of primitives given in action units (see the module docstring)."""
        return cls.from_arrays(tuple(p.name for p in primitives), np.stack([np.asarray(p.mean) for p in primitives]),
                               np.stack([np.asarray(p.std) for p in primitives]))

    @classmethod
    def from_arrays(cls, names: Sequence[str], means: np.ndarray, stds: np.ndarray) -> MixturePrior:
        """`from_primitives` for names and (K, D) means and stds in action units."""
        if not len(names):
            raise ValueError("a mixture prior needs at least one motion primitive")
        mean = np.clip(np.asarray(means, np.float64), -MAX_MEAN, MAX_MEAN)
        std = np.asarray(stds, np.float64)
        if mean.shape != std.shape or mean.shape[0] != len(names):
            raise ValueError(f"{len(names)} primitives need means and stds of shape (K, D); got {mean.shape}, {std.shape}")
        if np.any(std <= 0):
            bad = [n for n, s in zip(names, std) if np.any(s <= 0)]
            raise ValueError(f"motion primitives {bad} have a std <= 0; every std must be > 0")
        return cls(
            names=tuple(names),
            means=torch.as_tensor(np.arctanh(mean), dtype=torch.float32),
            stds=torch.as_tensor(std / (1.0 - mean**2), dtype=torch.float32),
        )

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    def log_prob_pre_tanh(self, u: torch.Tensor, logw: torch.Tensor) -> torch.Tensor:
        """log prior(u) for pre-tanh actions u (B, D) and per-row log weights logw (B, K) -> (B,).

        `logw` need not be normalised: it is log-softmaxed here, so the LLM's log-probs over
        the primitives (or any scores) give a proper mixture.
        """
        logw = torch.log_softmax(logw, dim=-1)
        means, stds = self.means.to(u), self.stds.to(u)
        per_component = diag_gaussian_logpdf(u[:, None, :], means[None], stds[None])  # (B, K)
        return torch.logsumexp(logw + per_component, dim=-1)

    def log_prob(self, action: torch.Tensor, logw: torch.Tensor) -> torch.Tensor:
        """log prior(a) of squashed actions a in (-1, 1) (B, D): the pre-tanh density minus the
        tanh Jacobian. For tests and diagnostics; training uses `kl_sample` on pre-tanh samples."""
        u = torch.atanh(action.clamp(-1 + 1e-6, 1 - 1e-6))
        return self.log_prob_pre_tanh(u, logw) - tanh_log_jacobian(u)

    def sample(self, logw: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Squashed actions (B, D) drawn from the prior of each row of logw (B, K)."""
        return torch.tanh(self.sample_pre_tanh(logw, generator))

    def sample_pre_tanh(self, logw: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pre-tanh samples u (B, D) of the prior of each row of logw (B, K), on logw's device
        (continuous CQL-Prior's out-of-distribution actions are tanh(u))."""
        k = torch.multinomial(torch.softmax(logw, -1), 1, generator=generator).squeeze(-1)
        noise = torch.randn(logw.shape[0], self.means.shape[1], generator=generator, device=logw.device)
        return self.means.to(logw)[k] + self.stds.to(logw)[k] * noise


def tanh_log_jacobian(u: torch.Tensor) -> torch.Tensor:
    """sum_d log(1 - tanh(u_d)^2), in the stable form RLlib's squashed Gaussian uses."""
    return (2.0 * (math.log(2.0) - u - torch.nn.functional.softplus(-2.0 * u))).sum(-1)


def kl_sample(u: torch.Tensor, policy_mean: torch.Tensor, policy_std: torch.Tensor,
              prior: MixturePrior, logw: torch.Tensor) -> torch.Tensor:
    """One-sample estimate of KL(pi || prior) per row, at pre-tanh samples u ~ N(mean, std).

    log pi(u) - log prior(u); its expectation over u is the KL between the squashed
    distributions too (the Jacobians cancel). With a reparameterised u the gradient flows
    into the policy's mean and std.
    """
    return diag_gaussian_logpdf(u, policy_mean, policy_std) - prior.log_prob_pre_tanh(u, logw)
