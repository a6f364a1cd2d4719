"""WebShop's rule-based baseline: search the instruction, open the first result, pick the options
the instruction names, buy.

The WebShop paper's rule baseline (Yao et al. 2022, Table 2) in this project's text env
(`envs/webshop_env.py`). Its policy, one page at a time:
- search page: `search[<the instruction>]`;
- results page: open the first product listed (rank 1);
- item page: click each option value the instruction names as a whole phrase (the longest
  first, each at most once an episode), then `click[buy now]`;
- any other page: `click[< prev]`.
It reads text, so it is an `evaluation.Policy` for the *unwrapped* text env (like ReAct):

    agent = WebShopRuleAgent()
    result = evaluate(make_text_env(cfg.env, role="eval"), agent, episodes, seed)

It uses no LLM and never learns; what it scores is the share of goals that plain search and
literal option matching already solve.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from priorcache.envs.webshop_env import BUY, PREV, SEARCH

_INSTRUCTION = "Instruction: "


class WebShopRuleAgent:
    """The rule baseline; see the module docstring. Remembers the options it clicked this episode."""

    def __init__(self) -> None:
        self._clicked: set[str] = set()

    def __call__(self, obs: Mapping[str, Any], rng: np.random.Generator) -> int:
        state: str = obs["state"]
        candidates: list[str] = list(obs["candidates"])
        lines = state.split("\n")
        instruction = lines[0].removeprefix(_INSTRUCTION)
        page = lines[1]
        if page == "Page: search":
            self._clicked = set()
            return candidates.index(f"{SEARCH}{instruction}]")
        if page.startswith("Page: results"):
            return self._first_result(lines, candidates)
        if page == "Page: item":
            return self._pick_option(instruction, candidates)
        return candidates.index(PREV)

    @staticmethod
    def _first_result(lines: list[str], candidates: list[str]) -> int:
        first = next((line for line in lines if line.startswith("1. ")), None)
        if first is None:  # nothing found: search again
            return 0
        title = first.removeprefix("1. ").rsplit(" | $", 1)[0].replace("[", "(").replace("]", ")")
        products = [i for i, c in enumerate(candidates) if c.startswith("click[") and title.startswith(c[6:-1])]
        return max(products, key=lambda i: len(candidates[i]))

    def _pick_option(self, instruction: str, candidates: list[str]) -> int:
        text = instruction.lower()
        named = [
            (len(c), i) for i, c in enumerate(candidates)
            if c not in self._clicked and re.search(rf"(?<![\w-]){re.escape(c[6:-1])}(?![\w-])", text)
            and c != BUY and c.startswith("click[")
        ]
        if not named:
            return candidates.index(BUY)
        choice = max(named)[1]
        self._clicked.add(candidates[choice])
        return choice
