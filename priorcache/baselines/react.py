"""ReAct baseline: the prior's own LLM writes a one-line thought, then scores the commands after it.

What ReAct is here. ReAct (Yao et al., 2023) interleaves free-text reasoning ("Thought: ...")
with actions in one transcript. This agent keeps that shape with the *same* small base model
that computes the RL prior, and acts on one text observation `{"state", "candidates"}` at a
time:
1. thought: the state is rendered with the `react-v1` template's `state` field
   ("{state}\\nThought:") and the backend greedily `generate`s one line (stopped at a newline,
   at most `max_thought_tokens` tokens);
2. action: every candidate command is scored (`score`) as the continuation of
   `state_prompt + " " + thought + "\\n>"`, and the agent takes the argmax, or samples
   softmax(score / prior.llm.temperature) with the caller's rng when `greedy=False`.
The few-shot transcripts in the template's KV-cached prefix show that format to the base model.

How it differs from the paper's ReAct:
- no tools and no free-form actions: the command is *chosen* among the env's admissible
  candidates by likelihood, never generated and parsed, so every action is valid;
- one thought per step, always followed by an action (no thought-only steps, no "finish");
- no episode history: each step sees only the current observation (the text envs put the goal,
  the room and the inventory, or the goal, progress and last feedback, into it), so the prompt
  stays short on a 2048-token context and steps are independent of each other;
- a 270M base model with few-shot examples, not a large instruction-following model.

Cost per step: 2 LLM calls (`stats.llm_calls`): the greedy thought (prompt prefill, then one
decode per thought token) and one scoring call, which prefills the prompt again with the thought
appended (`ScoringBackend` cannot extend a prompt) and decodes all candidates in one batch.
Measured with the packaged Gemma 3 270M Q4_K_M on llama.cpp, 2-core CPU, max_thought_tokens=32
(thoughts came out 8-16 tokens):
- 10 candidates, short states (~25 tokens), n_threads=2: median ~0.35 s per step (thought
  ~0.22 s + scoring ~0.13 s), but in some stretches of several seconds 1.5-4.5 s per step (two
  threads on two shared cores wait on each other whenever one is delayed);
- the same with n_threads=1: ~0.5 s per step (thought ~0.29 s + scoring ~0.23 s), steady;
- a generated TextWorld game (states ~200 tokens, 6-10 candidates), n_threads=2: ~0.9 s per
  step, as the state is prefilled twice.
That is ~2.5x a prior lookup by the same model (one scoring call), paid at every step: this
agent has no cache. `stats.latency_ms` holds every step's wall time.

How to use it: it is an `evaluation.Policy` for an *unwrapped* text env (not
`PriorFeaturesWrapper`, whose observations have no text):

    agent = ReActAgent(cfg.prior.llm)      # builds its own backend, with react-v1
    env = make_text_env(cfg.env, role="eval")
    result = evaluate(env, agent, cfg.eval.episodes, cfg.eval.seed)
    print(result, agent.stats.as_dict("react_"))
    agent.close()

It must not learn or cache anything: it is the LLM-only baseline the RL agents are compared
with. One agent owns one backend, which is not thread-safe: use one agent per process/thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from priorcache.platform.config import LLMConfig
from priorcache.platform.llm.backend import ScoringBackend
from priorcache.platform.llm.prompts import load_prompt
from priorcache.platform.llm.replica import make_backend
from priorcache.platform.logprob import log_softmax

PROMPT_ID = "react-v1"
"""The template the agent always uses (`prior.llm.prompt` is the prior's, not the agent's)."""


@dataclass
class ReActStats:
    """Counters the evaluation harness reports for a ReAct run."""

    steps: int = 0
    """Actions chosen."""
    llm_calls: int = 0
    """`generate` + `score` calls to the LLM (2 per step)."""
    latency_ms: list[float] = field(default_factory=list)
    """Wall time of each step (thought + scoring), in milliseconds."""

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """Flat metrics, names prefixed (e.g. `react_`): counts and latency mean / p50 / p95."""
        lat = np.asarray(self.latency_ms, dtype=np.float64)
        stats = {"steps": float(self.steps), "llm_calls": float(self.llm_calls)}
        if lat.size:
            stats |= {
                "latency_ms_mean": float(lat.mean()),
                "latency_ms_p50": float(np.percentile(lat, 50)),
                "latency_ms_p95": float(np.percentile(lat, 95)),
            }
        return {f"{prefix}{k}": v for k, v in stats.items()}


class ReActAgent:
    """Thought, then argmax (or sample) of the candidates' scores; see the module docstring."""

    def __init__(
        self,
        llm: LLMConfig,
        *,
        max_thought_tokens: int = 32,
        greedy: bool = True,
        backend: ScoringBackend | None = None,
    ) -> None:
        if max_thought_tokens < 1:
            raise ValueError(f"max_thought_tokens is {max_thought_tokens}; a thought needs at least 1 token")
        if not greedy and not llm.temperature > 0:
            raise ValueError(
                f"config key 'prior.llm.temperature' is {llm.temperature}; sampling actions "
                "(greedy=False) needs a positive temperature"
            )
        self.template = load_prompt(PROMPT_ID)
        self.max_thought_tokens = max_thought_tokens
        self.greedy = greedy
        self.temperature = llm.temperature
        self._owns_backend = backend is None
        self.backend: ScoringBackend | None = make_backend(llm, self.template) if backend is None else backend
        self.stats = ReActStats()
        self.last_thought = ""
        """The thought of the latest step (for logs and transcripts)."""
        self.last_scores = np.zeros(0)
        """The candidates' scores of the latest step."""

    def action_prompt(self, state_prompt: str, thought: str) -> str:
        """The prompt the candidates are scored after: the thought's line, then the command line.

        An empty thought (the model ended the line at once) leaves "Thought:" bare, with no
        trailing space before the newline.
        """
        return f"{state_prompt} {thought}\n>" if thought else f"{state_prompt}\n>"

    def __call__(self, obs: Mapping[str, Any], rng: np.random.Generator) -> int:
        """Index of the chosen command in `obs["candidates"]`."""
        if self.backend is None:
            raise RuntimeError("ReActAgent is closed; create a new one")
        if "candidates" not in obs or not isinstance(obs.get("state"), str):
            raise ValueError(
                "ReActAgent acts on text observations {'state': str, 'candidates': tuple[str, ...]}; "
                f"got keys {sorted(obs)}. Pass the text env itself, not PriorFeaturesWrapper"
            )
        candidates = list(obs["candidates"])
        if not candidates:
            raise ValueError("the observation has no candidate commands; there is nothing to choose from")

        start = time.perf_counter()
        state_prompt = self.template.render_state(state=obs["state"])
        thought = self.backend.generate(state_prompt, self.max_thought_tokens, stop=("\n",)).strip()
        continuations = [self.template.render_candidate(c) for c in candidates]
        scores = self.backend.score([self.action_prompt(state_prompt, thought)], [continuations])[0]
        if self.greedy:
            choice = int(np.argmax(scores))
        else:
            probs = np.exp(log_softmax(scores, self.temperature))
            choice = int(rng.choice(len(candidates), p=probs / probs.sum()))

        self.stats.latency_ms.append(1000.0 * (time.perf_counter() - start))
        self.stats.steps += 1
        self.stats.llm_calls += 2
        self.last_thought = thought
        self.last_scores = np.asarray(scores, dtype=np.float64)
        return choice

    def close(self) -> None:
        """Free the backend the agent built (a backend passed in stays the caller's); idempotent."""
        if self.backend is not None and self._owns_backend:
            close = getattr(self.backend, "close", None)
            if close is not None:
                close()
        self.backend = None
