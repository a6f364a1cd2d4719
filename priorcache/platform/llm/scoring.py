"""Scoring rules: how an LLM's candidate log-likelihoods become a prior over candidate actions.

    sum   s(a) = log p(a | prompt)                            (summed over a's tokens)
    mean  s(a) = log p(a | prompt) / n_tokens(a)              (default: measured best)
    pmi   s(a) = log p(a | prompt) - log p(a | empty state)   (PMI calibration)

    prior(a) = (1 - eps) * softmax(s / T)(a) + eps / n_candidates

`sum` is the model's own probability of the command but favours short commands (every token
costs log-probability); `mean` removes the length bias; `pmi` removes what the model would say
without seeing the state (how common a command is in general), keeping what the state adds.
The temperature T flattens (T > 1) or sharpens the prior; the uniform mixture eps puts a floor
under every candidate, so an overconfident prior cannot rule an action out.
The rule, T and eps change every cached prior, so `ScoringRule.id` is part of the cache guard.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from priorcache.platform.logprob import log_softmax

SCORING_RULES = ("mean", "sum", "pmi")
"""Names accepted by `prior.llm.scoring`."""


@dataclass(frozen=True)
class ScoringRule:
    """A scoring rule with its temperature and uniform mixture (`prior.llm.{scoring,temperature,uniform_mix}`)."""

    name: str = "mean"
    """One of `SCORING_RULES`."""
    temperature: float = 1.0
    """prior = softmax(score / temperature)."""
    uniform_mix: float = 0.0
    """Weight eps of the uniform distribution mixed into the prior, in [0, 1)."""

    def __post_init__(self) -> None:
        if self.name not in SCORING_RULES:
            raise ValueError(f"config key 'prior.llm.scoring' is {self.name!r}; choose one of {', '.join(SCORING_RULES)}")
        if not self.temperature > 0:
            raise ValueError(f"config key 'prior.llm.temperature' is {self.temperature}; it must be > 0")
        if not 0 <= self.uniform_mix < 1:
            raise ValueError(f"config key 'prior.llm.uniform_mix' is {self.uniform_mix}; it must be in [0, 1)")

    @property
    def token_reduction(self) -> str:
        """How the backend reduces a candidate's token log-probs: `mean` or `sum`."""
        return "mean" if self.name == "mean" else "sum"

    @property
    def id(self) -> str:
        """Names everything that shapes the prior besides model and prompt (part of the cache guard)."""
        return f"{self.name}-T{self.temperature:g}-mix{self.uniform_mix:g}"

    def prior(self, scores: np.ndarray, null_scores: np.ndarray | None = None) -> np.ndarray:
        """log prior over candidates from backend scores (and, for `pmi`, the empty-state scores)."""
        if self.name == "pmi":
            if null_scores is None:
                raise ValueError("the pmi scoring rule needs the candidates' scores after an empty state")
            scores = scores - null_scores
        logp = log_softmax(scores, self.temperature)
        if self.uniform_mix == 0:
            return logp
        return np.log((1 - self.uniform_mix) * np.exp(logp) + self.uniform_mix / logp.size)
