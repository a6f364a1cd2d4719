"""How much the agent trusts the LLM prior as training proceeds (shared by *-Prior algorithms).

Early on the policy knows nothing and the prior is the best guess; later the learned values
should win. Both the prior weight w (= 1/temperature in the posterior logits) and the
coefficient alpha of alpha * KL(pi || prior) fall linearly with env steps from their start
values to their end values over `decay_steps`, alpha in proportion to w.

`PriorTrustConfig` adds the schedule to an RLlib config as a `.prior(...)` section;
`apply_prior_trust` is what a learner calls after each update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

PRIOR_WEIGHT_KEY = "prior_weight"
"""Learner metric: the prior weight w in force."""


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


class PriorTrustConfig:
    """Mixin for an RLlib `AlgorithmConfig`: the `.prior(...)` section (the prior-trust schedule)."""

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class)  # type: ignore[call-arg]
        self.prior_weight_start = 1.0
        self.prior_weight_end = 0.25
        self.prior_kl_coeff = 0.05
        self.prior_decay_steps = 20_000

    def prior(
        self,
        *,
        weight_start: float = NotProvided,  # type: ignore[assignment]
        weight_end: float = NotProvided,  # type: ignore[assignment]
        kl_coeff: float = NotProvided,  # type: ignore[assignment]
        decay_steps: int = NotProvided,  # type: ignore[assignment]
    ) -> Self:
        """Set how much the agent trusts the LLM prior.

        Args:
            weight_start: weight w of log p_LLM in the posterior logits at step 0.
            weight_end: w after `decay_steps` env steps.
            kl_coeff: alpha of alpha * KL(pi || p_LLM) at step 0 (falls in proportion to w).
                Algorithms without a KL term (DQN-Prior) ignore it.
            decay_steps: env steps over which w and alpha fall linearly.
        """
        for name, value in (("prior_weight_start", weight_start), ("prior_weight_end", weight_end),
                            ("prior_kl_coeff", kl_coeff), ("prior_decay_steps", decay_steps)):
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    def prior_trust(self) -> PriorTrustSchedule:
        """The schedule the learner applies."""
        return PriorTrustSchedule(
            self.prior_weight_start, self.prior_weight_end, self.prior_kl_coeff, self.prior_decay_steps
        )

    def validate(self) -> None:
        super().validate()  # type: ignore[misc]
        if min(self.prior_weight_start, self.prior_weight_end, self.prior_kl_coeff) < 0:
            self._value_error("prior weights and `kl_coeff` in `.prior(...)` must be >= 0")  # type: ignore[attr-defined]
        if self.prior_decay_steps < 0:
            self._value_error("`decay_steps` in `.prior(...)` must be >= 0")  # type: ignore[attr-defined]

    @property
    def _model_config_auto_includes(self) -> dict[str, Any]:
        return super()._model_config_auto_includes | {"prior_weight": self.prior_weight_start}  # type: ignore[misc]


def apply_prior_trust(learner: Any, timesteps: dict[str, Any]) -> dict[str, float]:
    """Set every module's `prior_weight` buffer from the schedule at the sampled env steps.

    Returns the KL coefficient alpha(t) per module id, for learners with a KL term.
    """
    env_steps = int(timesteps.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0))
    coeffs = {}
    for module_id in learner.module.keys():
        schedule = learner.config.get_config_for_module(module_id).prior_trust()
        learner.module[module_id].unwrapped().prior_weight.fill_(schedule.weight(env_steps))
        coeffs[module_id] = schedule.kl_coeff_at(env_steps)
    return coeffs
