"""The ReAct baseline: prompt composition and action choice on a fake backend, then the real model."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

from priorcache.baselines.react import PROMPT_ID, ReActAgent, ReActStats
from priorcache.platform.config import LLMConfig
from priorcache.platform.llm.backend import ScoringBackend
from priorcache.platform.llm.model_files import cache_dir_from_env, resolve_model_path
from priorcache.platform.llm.prompts import load_prompt
from priorcache.platform.logprob import log_softmax

KITCHEN = {
    "state": "Goal: take the apple.\nYou are in a kitchen. There is an apple on the table.",
    "candidates": ("go north", "look", "take apple"),
}


class FakeBackend(ScoringBackend):
    """Records every call; thinks `thought` and returns `scores` for every candidate list."""

    model_id = "fake"

    def __init__(self, thought: str = " The apple is here, so I take it.",
                 scores: Sequence[float] = (-3.0, -1.0, -2.0)) -> None:
        self.thought = thought
        self.scores = np.asarray(scores, dtype=np.float64)
        self.generated: list[tuple[str, int, tuple[str, ...]]] = []
        self.scored: list[tuple[list[str], list[list[str]]]] = []
        self.closed = False

    def generate(self, prompt: str, max_tokens: int = 32, stop: Sequence[str] = ("\n",)) -> str:
        self.generated.append((prompt, max_tokens, tuple(stop)))
        return self.thought

    def generate_distinct(self, prompt: str, n: int, max_tokens: int = 32, stop: Sequence[str] = ("\n",)) -> list[str]:
        return [self.generate(prompt, max_tokens, stop)] * n

    def score(self, prompts: Sequence[str], candidate_lists: Sequence[Sequence[str]]) -> list[np.ndarray]:
        self.scored.append((list(prompts), [list(c) for c in candidate_lists]))
        return [self.scores[: len(c)].copy() for c in candidate_lists]

    def close(self) -> None:
        self.closed = True


def test_template_loads_and_renders():
    template = load_prompt(PROMPT_ID)
    assert template.id == "react-v1" and (template.name, template.version) == ("react", 1)
    assert template.prefix.endswith("\n\n")
    # Three few-shot transcripts, each: goal, observation, one thought line, one command line.
    examples = template.prefix.strip().split("\n\n")[1:]
    assert len(examples) == 3
    for example in examples:
        lines = example.split("\n")
        assert len(lines) == 4 and lines[0].startswith("Goal: ")
        assert lines[2].startswith("Thought: ") and lines[3].startswith("> ")
    assert template.render_state(state="Goal: x.\nY.") == "Goal: x.\nY.\nThought:"
    assert template.render_candidate("take apple") == " take apple"


def test_prompts_are_composed_as_documented():
    backend = FakeBackend()
    agent = ReActAgent(LLMConfig(), max_thought_tokens=20, backend=backend)
    agent(KITCHEN, np.random.default_rng(0))
    state_prompt = KITCHEN["state"] + "\nThought:"
    assert backend.generated == [(state_prompt, 20, ("\n",))]
    # The thought is stripped and put after "Thought: ", then the command line starts.
    assert backend.scored == [(
        [state_prompt + " The apple is here, so I take it.\n>"],
        [[" go north", " look", " take apple"]],
    )]
    assert agent.last_thought == "The apple is here, so I take it."

    # A thought cut off at once leaves "Thought:" bare.
    silent = FakeBackend(thought="")
    ReActAgent(LLMConfig(), backend=silent)(KITCHEN, np.random.default_rng(0))
    assert silent.scored[0][0] == [state_prompt + "\n>"]


def test_greedy_takes_the_argmax_and_counts():
    agent = ReActAgent(LLMConfig(), backend=FakeBackend(scores=(-3.0, -1.0, -2.0)))
    rng = np.random.default_rng(0)
    assert [agent(KITCHEN, rng) for _ in range(3)] == [1, 1, 1]
    assert agent.stats.steps == 3 and agent.stats.llm_calls == 6
    assert len(agent.stats.latency_ms) == 3 and all(ms >= 0 for ms in agent.stats.latency_ms)
    np.testing.assert_array_equal(agent.last_scores, [-3.0, -1.0, -2.0])
    metrics = agent.stats.as_dict("react_")
    assert metrics["react_steps"] == 3 and metrics["react_llm_calls"] == 6
    assert {"react_latency_ms_mean", "react_latency_ms_p50", "react_latency_ms_p95"} <= set(metrics)
    assert ReActStats().as_dict() == {"steps": 0.0, "llm_calls": 0.0}


def test_sampling_follows_softmax_of_scores_over_temperature():
    scores = np.log([0.2, 0.3, 0.5])
    for temperature in (1.0, 0.5):
        backend = FakeBackend(scores=scores)
        agent = ReActAgent(LLMConfig(temperature=temperature), greedy=False, backend=backend)
        # The same seed gives the same actions as sampling softmax(scores / temperature) directly.
        expected_p = np.exp(log_softmax(scores, temperature))
        reference = np.random.default_rng(7)
        expected = [int(reference.choice(3, p=expected_p)) for _ in range(50)]
        rng = np.random.default_rng(7)
        assert [agent(KITCHEN, rng) for _ in range(50)] == expected
        # And the frequencies match those probabilities.
        rng = np.random.default_rng(1)
        counts = np.bincount([agent(KITCHEN, rng) for _ in range(3000)], minlength=3)
        np.testing.assert_allclose(counts / counts.sum(), expected_p, atol=0.03)


def test_invalid_uses_say_what_to_change():
    with pytest.raises(ValueError, match="max_thought_tokens"):
        ReActAgent(LLMConfig(), max_thought_tokens=0, backend=FakeBackend())
    with pytest.raises(ValueError, match="prior.llm.temperature"):
        ReActAgent(LLMConfig(temperature=0.0), greedy=False, backend=FakeBackend())
    agent = ReActAgent(LLMConfig(), backend=FakeBackend())
    rng = np.random.default_rng(0)
    features = {"state": np.zeros(4), "action_mask": np.ones(3), "prior_logp": np.zeros(3)}
    with pytest.raises(ValueError, match="PriorFeaturesWrapper"):
        agent(features, rng)
    with pytest.raises(ValueError, match="no candidate"):
        agent({"state": "Goal: wait.", "candidates": ()}, rng)
    assert agent.stats.steps == 0 and agent.stats.llm_calls == 0


def test_close_leaves_a_passed_backend_to_its_owner():
    backend = FakeBackend()
    agent = ReActAgent(LLMConfig(), backend=backend)
    agent.close()
    agent.close()
    assert not backend.closed
    with pytest.raises(RuntimeError, match="closed"):
        agent(KITCHEN, np.random.default_rng(0))


# --- the packaged Gemma 3 270M ---------------------------------------------------------------


@pytest.fixture(scope="module")
def model_path() -> Path:
    return resolve_model_path(None, cache_dir_from_env())


@pytest.fixture(scope="module")
def agent():
    react = ReActAgent(LLMConfig(n_threads=2), max_thought_tokens=32)  # builds its own llama.cpp backend
    yield react
    react.close()


def test_real_model_thinks_then_acts(agent):
    action = agent(KITCHEN, np.random.default_rng(0))
    print(f"\nReAct chose {KITCHEN['candidates'][action]!r} after thought {agent.last_thought!r}; "
          f"scores {np.round(agent.last_scores, 2).tolist()}, {agent.stats.latency_ms[-1]:.0f} ms")
    assert action in range(len(KITCHEN["candidates"]))
    assert agent.last_thought and "\n" not in agent.last_thought
    assert agent.stats.steps == 1 and agent.stats.llm_calls == 2
    # Robust: "take apple" leads the others by ~7 nats per token here (the numerics' noise is
    # ~0.2), and greedy decoding makes the thought deterministic.
    assert KITCHEN["candidates"][action] == "take apple"
    assert agent.last_scores[2] > agent.last_scores[:2].max() + 2.0


def test_react_prompts_tokenize_as_in_running_text(model_path):
    # The backend tokenizes prefix, prompt and each candidate separately; with react-v1 (the
    # prompt ends at "\n>", candidates start with a space) that must give the joined text's tokens.
    from llama_cpp import Llama

    vocab = Llama(str(model_path), vocab_only=True, verbose=False)
    template = load_prompt(PROMPT_ID)
    state_prompt = template.render_state(state=KITCHEN["state"])
    prompt = f"{state_prompt} The apple is on the table, so I should pick it up first.\n>"
    for action in ("take apple", "go north", "look", "put red apple in wicker basket"):
        pieces = [template.prefix, prompt, template.render_candidate(action)]
        joined = vocab.tokenize("".join(pieces).encode(), add_bos=True)
        separate = [t for i, p in enumerate(pieces) for t in vocab.tokenize(p.encode(), add_bos=i == 0)]
        assert joined == separate, action
