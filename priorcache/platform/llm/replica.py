"""One LLM replica: a Ray actor that turns (state text, candidate actions) into a prior.

The replica owns a scoring backend (built by `make_backend` from `LLMConfig`) and the prompt
template; it renders prompts, scores candidates and turns the scores into the prior with the
configured scoring rule (`platform/llm/scoring.py`). It knows nothing of caching or batching
across callers: the replica pool does that.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import ray

from priorcache.platform.config import LLMConfig
from priorcache.platform.llm.backend import ScoringBackend
from priorcache.platform.llm.model_files import cache_dir_from_env, resolve_model_path
from priorcache.platform.llm.prompt_context import demonstration_episodes
from priorcache.platform.llm.prompts import PromptTemplate, load_prompt
from priorcache.platform.llm.scoring import ScoringRule

PROPOSAL_TOKENS = 24
"""Most tokens of one proposed action argument (a search query is a few words)."""


def _make_llama_cpp(cfg: LLMConfig, template: PromptTemplate) -> ScoringBackend:
    from priorcache.platform.llm.llama_cpp_backend import LlamaCppBackend

    return LlamaCppBackend(
        resolve_model_path(cfg.model_path, cache_dir_from_env()),
        template.prefix,
        n_threads=cfg.n_threads,
        n_ctx=cfg.n_ctx,
        normalisation=ScoringRule(cfg.scoring).token_reduction,
        adapter_path=cfg.adapter_path or None,
    )


def _make_vllm(cfg: LLMConfig, template: PromptTemplate) -> ScoringBackend:
    from priorcache.platform.llm.vllm_backend import VllmBackend

    return VllmBackend(
        cfg.model_path,
        template.prefix,
        tensor_parallel_size=cfg.tensor_parallel_size,
        gpu_memory_utilization=cfg.gpu_memory_utilization,
        max_model_len=cfg.n_ctx,
        dtype=cfg.dtype,
        normalisation=ScoringRule(cfg.scoring).token_reduction,
    )


BACKENDS: dict[str, Callable[[LLMConfig, PromptTemplate], ScoringBackend]] = {
    "llama_cpp": _make_llama_cpp,
    "vllm": _make_vllm,
}


def make_backend(cfg: LLMConfig, template: PromptTemplate) -> ScoringBackend:
    """The scoring backend named by `prior.llm.backend`."""
    if cfg.backend not in BACKENDS:
        raise ValueError(f"config key 'prior.llm.backend' is {cfg.backend!r}; choose one of {', '.join(BACKENDS)}")
    return BACKENDS[cfg.backend](cfg, template)


class PriorScorer:
    """Backend + template + scoring rule: states and candidates in, prior log-probs out."""

    def __init__(self, cfg: LLMConfig) -> None:
        self.rule = ScoringRule(cfg.scoring, cfg.temperature, cfg.uniform_mix)
        self.template = load_prompt(cfg.prompt)
        if cfg.demos:
            self.template = self.template.with_demonstrations(demonstration_episodes(cfg.demos, cfg.demo_episodes))
        self.backend = make_backend(cfg, self.template)
        self._null_scores: dict[str, float] = {}

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    @property
    def prompt_version(self) -> str:
        """Template id and scoring rule: together they say how a state's prior was computed."""
        return f"{self.template.id}/{self.rule.id}"

    def prior(self, states: Sequence[str], candidate_lists: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """log p(a|s) over each candidate list (sums to 1 in probability space)."""
        prompts = [self.template.render_state(state=s) for s in states]
        continuations = [[self.template.render_candidate(a) for a in cands] for cands in candidate_lists]
        scores = self.backend.score(prompts, continuations)
        if self.rule.name != "pmi":
            return [self.rule.prior(s) for s in scores]
        return [self.rule.prior(s, self._empty_state_scores(c)) for s, c in zip(scores, continuations)]

    def propose(self, state: str, opening: str, n: int, max_tokens: int = PROPOSAL_TOKENS) -> list[str]:
        """Up to `n` distinct arguments for the bracketed action that starts with `opening`
        (e.g. `search[`): the model continues the state's prompt + the opening up to `]`."""
        prompt = self.template.render_state(state=state) + self.template.render_candidate(opening)
        texts = self.backend.generate_distinct(prompt, n, max_tokens, stop=("]", "\n"))
        return list(dict.fromkeys(" ".join(t.split()) for t in texts if t.strip()))

    def _empty_state_scores(self, continuations: Sequence[str]) -> np.ndarray:
        """Scores after the template with an empty state; memoised, since commands recur across states."""
        new = sorted({c for c in continuations if c not in self._null_scores})
        if new:
            empty = self.template.render_state(state="")
            self._null_scores.update(zip(new, self.backend.score([empty], [new])[0]))
        return np.array([self._null_scores[c] for c in continuations])


@ray.remote(max_restarts=0)
class LLMReplica:
    """A Ray actor hosting one `PriorScorer` (its CPU/GPU resources come from `.options`)."""

    def __init__(self, cfg: LLMConfig) -> None:
        self._scorer = PriorScorer(cfg)

    def info(self) -> dict[str, str]:
        """The ids cached priors are guarded by."""
        return {"model_id": self._scorer.model_id, "prompt_version": self._scorer.prompt_version}

    def prior(self, states: list[str], candidate_lists: list[list[str]]) -> list[np.ndarray]:
        """Batched prior; see `PriorScorer.prior`."""
        return self._scorer.prior(states, candidate_lists)

    def propose(self, state: str, opening: str, n: int) -> list[str]:
        """Action proposals; see `PriorScorer.propose`."""
        return self._scorer.propose(state, opening, n)
