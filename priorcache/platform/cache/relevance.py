"""The relevance gate of the keyed cache: may a prior stored for one state serve another?

A keyed cache (`core.py`, `mode="keyed"`) holds several LLM answers under one key (the part of
the state its env names as what the prior hinges on, e.g. ALFWorld's task and last feedback). An
answer serves a state under its key unless the two state texts differ in something the answer's
top command names: `fridge 1` looked in once more, `open` said once less. Plain word counting,
no LLM and no knowledge of any env's layout.

Why this rule: a greedy agent keeps its path exactly when every served prior has the LLM's own
argmax, and on ALFWorld every argmax flip of a coarser key had that visible cause (the stored
top command went somewhere the fresh state had already been). Measured with
`benchmarks/oracle_gate.py`, docs/cache.md ("A relevance gate").

Where the LLM put the answer's top command ahead of the next by a clear margin (`decisive`), a
touched word rarely changes its choice: on the recorded ALFWorld answers, 141 of the 143
answers the gate refused with a lead of 0.5 nats or more kept the fresh argmax, against 114 of
148 with a smaller lead. So an answer leading by `prior.cache.decisive_margin` nats (0.25 by
default) passes. Under a key without the task that cost wins, as close calls and decisive
answers made for another task were served; with ALFWorld's task in the key it kept every win of
exact matching on 200 greedy episodes (docs/cache.md, "Close calls keep to their task").
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

IGNORED_WORDS = frozenset({"a", "the", "some", "go", "to", "in", "on", "with", "from"})
"""Words a command shares with most others (`go to`, `put ... in/on`): their counts tell two
states apart without bearing on the command."""

_WORD = re.compile(r"[a-z]+ \d+|[a-z]+")
"""A word, or a numbered object (`fridge 1`) as one word: `fridge 2` is another place."""


def words(text: str) -> Counter:
    """How often each word occurs in `text` (lower case, a numbered object as one word)."""
    return Counter(_WORD.findall(text.lower()))


def untouched(stored_state: str, fresh_state: str, command: str) -> bool:
    """Whether the two state texts say each word `command` names (ignored words aside) equally
    often, i.e. whether the prior stored for `stored_state`, whose top command is `command`,
    may serve `fresh_state`."""
    stored, fresh = words(stored_state), words(fresh_state)
    return all(stored[word] == fresh[word] for word in words(command) if word not in IGNORED_WORDS)


def lead(logp: np.ndarray) -> float:
    """How many nats the top of `logp` leads the second by (inf for a single candidate: nothing
    to flip to)."""
    if len(logp) < 2:
        return float("inf")
    second, first = np.partition(np.asarray(logp), -2)[-2:]
    return float(first - second)


def decisive(logp: np.ndarray, margin: float) -> bool:
    """Whether the top of `logp` leads the second by at least `margin` nats."""
    return lead(logp) >= margin
