"""Expert demonstrations -> next-action examples, tokenized exactly as the llama.cpp backend scores.

The backend scores `template.prefix + template.render_state(state) + template.render_candidate(a)`
as three token runs: the prefix with BOS, the state prompt without BOS, and the candidate on
its own without BOS (`LlamaCppBackend._score_one`). An example is the same runs with the
expert's action as the candidate; the loss is taken on the candidate's tokens only.

The held-out split is by game, not by step: steps of one game are too alike to measure
generalisation.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Iterator, Sequence

from priorcache.demos import DemoStep
from priorcache.platform.llm.llama_tokens import LlamaTokenizer
from priorcache.platform.llm.lora_model import TokenExample
from priorcache.platform.llm.prompts import PromptTemplate


@dataclass(frozen=True)
class ActionExample:
    """One demonstration step with the expert action's tokens."""

    step: DemoStep
    tokens: TokenExample


class ExampleEncoder:
    """Tokenizes states and candidates with the backend's runs (see the module docstring)."""

    def __init__(self, template: PromptTemplate, tokenizer: LlamaTokenizer) -> None:
        self.template = template
        self._tokenizer = tokenizer
        self._prefix = tuple(tokenizer.tokenize(template.prefix, bos=True))

    def context(self, state: str) -> tuple[int, ...]:
        """Prefix + state prompt tokens."""
        return self._prefix + tuple(self._tokenizer.tokenize(self.template.render_state(state=state), bos=False))

    def candidate(self, action: str) -> tuple[int, ...]:
        """A candidate's tokens, tokenized on its own as the backend does."""
        return tuple(self._tokenizer.tokenize(self.template.render_candidate(action), bos=False))

    def example(self, step: DemoStep) -> ActionExample:
        return ActionExample(step, TokenExample(self.context(step.state), self.candidate(step.action)))

    def all_candidates(self, step: DemoStep) -> list[TokenExample]:
        """Every candidate of a step after its context (the order of `step.candidates`)."""
        context = self.context(step.state)
        return [TokenExample(context, self.candidate(action)) for action in step.candidates]


def split_by_game(steps: Sequence[DemoStep], heldout_fraction: float, seed: int) -> tuple[list[DemoStep], list[DemoStep]]:
    """(train, held-out) steps; ceil(fraction x games) whole games, drawn with `seed`, are held out.

    Every split keeps at least one game when there are two or more and the fraction is above 0.
    """
    games = sorted({step.game for step in steps})
    random.Random(seed).shuffle(games)
    n_heldout = math.ceil(heldout_fraction * len(games)) if heldout_fraction > 0 else 0
    if len(games) >= 2:
        n_heldout = min(max(n_heldout, 1 if heldout_fraction > 0 else 0), len(games) - 1)
    heldout = set(games[:n_heldout])
    return [s for s in steps if s.game not in heldout], [s for s in steps if s.game in heldout]


def spread(items: Sequence[DemoStep], limit: int) -> list[DemoStep]:
    """At most `limit` items taken evenly across the sequence (all of them when `limit` is 0)."""
    if limit <= 0 or len(items) <= limit:
        return list(items)
    return [items[(i * len(items)) // limit] for i in range(limit)]


def batches(examples: Sequence[ActionExample], batch_size: int, rng: random.Random) -> Iterator[list[ActionExample]]:
    """Endless shuffled batches (a new order every epoch; the last short batch of an epoch is kept)."""
    order = list(range(len(examples)))
    while True:
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            yield [examples[i] for i in order[start:start + batch_size]]
