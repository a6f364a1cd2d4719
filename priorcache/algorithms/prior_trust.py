"""How much the agent trusts the LLM prior as training proceeds (shared by *-Prior algorithms).

Early on the policy knows nothing and the prior is the best guess; later the learned values
should win. Both the prior weight w (= 1/temperature in the posterior logits) and the
coefficient alpha of alpha * KL(pi || prior) fall linearly with env steps from their start
values to their end values over `decay_steps`, alpha in proportion to w.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PriorTrustSchedule:
    """Linear decay of the prior weight and KL coefficient with env steps."""

    weight_start: float = 1.0
    """w at step 0."""
    weight_end: float = 0.25
    """w from `decay_steps` on."""
    kl_coeff: float = 0.05
    """alpha at step 0; alpha(t) = kl_coeff * w(t) / weight_start."""
    decay_steps: int = 20_000
    """Env steps of the decay."""

    def weight(self, env_steps: int) -> float:
        """Prior weight w after `env_steps` sampled env steps."""
        progress = min(1.0, env_steps / self.decay_steps) if self.decay_steps else 1.0
        return self.weight_start + (self.weight_end - self.weight_start) * progress

    def kl_coeff_at(self, env_steps: int) -> float:
        """alpha after `env_steps` sampled env steps."""
        if self.weight_start == 0.0:
            return self.kl_coeff
        return self.kl_coeff * self.weight(env_steps) / self.weight_start
