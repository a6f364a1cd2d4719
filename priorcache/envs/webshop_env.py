"""WebShop as a text environment: search, browse and buy among 1,000 real products.

`WebShopEnv` follows WebShop's page flow (Yao et al. 2022) over the shipped catalogue
(`webshop_data.py`), with its search engine rebuilt in Python (`webshop_search.py`) and its
reward (`webshop_reward.py`), under the contract every text env shares (`candidates.py`):
the agent picks an index into the current list of commands.

Pages and their commands (WebShop's `search[...]` / `click[...]` syntax):
- **search**: `search[<query>]`. A query is open text, so the candidates are the
  instruction itself plus the queries a proposer gives (`query_proposer(state) -> queries`;
  the LLM prior proposes them, cached like its scores: see `registry.make_env`).
- **results** (10 a page, at most 50): `click[<title>]` for each product, `click[next >]`,
  `click[< prev]`, `click[back to search]`. Products are clicked by a title shortened to
  `title_words` words, not by ASIN as in WebShop: an ASIN tells neither the LLM prior nor
  the policy's text embedding anything. The page lists them in rank order, numbered.
- **item**: `click[<option value>]` for every value not selected yet, `click[description]`,
  `click[features]`, `click[buy now]`, `click[< prev]`, `click[back to search]`.
- **description** / **features**: the text (shortened to `detail_chars`), then `click[< prev]`
  and `click[back to search]`.
`click[buy now]` ends the episode with the purchase's reward; nothing else is rewarded.

Observation (a plain dict): `state` is the instruction, the page and what it shows, e.g.

    Instruction: Find me machine wash men's t-shirts with long sleeve with color: black,
    and size: small, and price lower than 60.00 dollars
    Page: results for "men's long sleeve t-shirt", page 1 of 5
    1. Gildan Men's Ultra Cotton Long Sleeve T-Shirt | $12.35
    2. ...

`candidates`: the commands above, sorted and de-duplicated, at most `max_actions`.
`info` (reset and every step): `won` (bought with reward 1, WebShop's success), `lost`
(False), `score` (the purchase's reward, 0 before), `max_score` (1), `steps`,
`candidates_truncated`, `page`, `goal_asin`, and at the purchase `purchased_asin` and the
reward's parts (`r_type`, `attributes_matched`, `options_matched`, `price_ok`).

Episodes end at the purchase (terminated) or after `max_steps` steps (truncated, reward 0).
Goals are drawn from the `split` at each reset with the env's seeded `np_random`
(`Catalog.goal`): a seed always gives the same goal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Sequence, SupportsIndex

import gymnasium as gym
from gymnasium import spaces

from priorcache.envs.candidates import action_slots, candidate_index, text_observation_space
from priorcache.envs.webshop_data import SPLITS, Catalog, Goal, Product, ascii_text, load_catalog
from priorcache.envs.webshop_reward import PurchaseReward, purchase_reward
from priorcache.envs.webshop_search import ProductSearch

Observation = dict[str, Any]
Info = dict[str, Any]
QueryProposer = Callable[[str], Sequence[str]]
"""Search-page state text -> proposed queries (without the `search[...]` brackets)."""

SEARCH = "search["
"""How a search command opens (its query follows, then `]`): what query proposals continue."""
BACK = "click[back to search]"
PREV = "click[< prev]"
NEXT = "click[next >]"
BUY = "click[buy now]"
DETAIL_PAGES = ("description", "features")


@dataclass
class _Page:
    """Where the agent is (the env keeps the pages `< prev` returns to)."""

    kind: str = "search"
    query: str = ""
    results: list[str] = field(default_factory=list)
    number: int = 1
    asin: str = ""
    selected: dict[str, str] = field(default_factory=dict)


class WebShopEnv(gym.Env[Observation, int]):
    """WebShop's shopping task as a gymnasium env; see the module docstring."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        split: str = "train",
        *,
        data_dir: str = "",
        max_steps: int = 15,
        max_actions: int = 64,
        results_per_page: int = 10,
        max_results: int = 50,
        title_words: int = 10,
        detail_chars: int = 600,
        query_proposer: QueryProposer | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"config key 'env.webshop.{split}' names no goal split; choose one of {', '.join(SPLITS)}")
        for key, value in (("max_steps", max_steps), ("max_actions", max_actions),
                           ("webshop.results_per_page", results_per_page), ("webshop.max_results", max_results),
                           ("webshop.title_words", title_words), ("webshop.detail_chars", detail_chars)):
            if value < 1:
                raise ValueError(f"config key 'env.{key}' must be >= 1, got {value}")
        self.catalog: Catalog = load_catalog(data_dir)
        self.split = split
        self.max_steps = max_steps
        self.max_actions = max_actions
        self.results_per_page = results_per_page
        self.max_results = max_results
        self.title_words = title_words
        self.detail_chars = detail_chars
        self.query_proposer = query_proposer
        self.action_space = spaces.Discrete(max_actions)
        self.observation_space = text_observation_space()
        self._search = _search_engine(data_dir)
        self.goal: Goal | None = None
        """The goal being played (None before the first reset)."""
        self._page = _Page()
        self._history: list[_Page] = []
        self._actions: dict[str, Callable[[], None]] = {}
        self._candidates: tuple[str, ...] = ()
        self._dropped = 0
        self._steps = 0
        self._done = True
        self._purchase: tuple[str, PurchaseReward] | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Observation, Info]:
        super().reset(seed=seed)
        self.goal = self.catalog.goal(self.split, self.np_random)
        self._page, self._history = _Page(), []
        self._steps, self._done, self._purchase = 0, False, None
        return self._observe(), self._info()

    def step(self, action: SupportsIndex) -> tuple[Observation, float, bool, bool, Info]:
        if self._done:
            raise RuntimeError("WebShopEnv.step() needs reset() first, and again after an episode ends")
        command = self._candidates[candidate_index(action, len(self._candidates))]
        self._actions[command]()
        self._steps += 1
        terminated = self._purchase is not None
        truncated = not terminated and self._steps >= self.max_steps
        self._done = terminated or truncated
        reward = self._purchase[1].reward if self._purchase else 0.0
        return self._observe(), reward, terminated, truncated, self._info()

    # -- pages ---------------------------------------------------------------------------

    def _go(self, page: _Page) -> None:
        self._history.append(self._page)
        self._page = page

    def _back(self) -> None:
        self._page = self._history.pop() if self._history else _Page()

    def _to_search(self) -> None:
        self._go(_Page())

    def _run_search(self, query: str) -> None:
        self._go(_Page("results", query, self._search.search(query, self.max_results)))

    def _next_page(self) -> None:
        p = self._page
        self._go(_Page("results", p.query, p.results, p.number + 1))

    def _open(self, asin: str) -> None:
        self._go(_Page("item", asin=asin))

    def _select(self, name: str, value: str) -> None:
        p = self._page
        self._page = _Page("item", asin=p.asin, selected={**p.selected, name: value})

    def _detail(self, kind: str) -> None:
        p = self._page
        self._go(_Page(kind, asin=p.asin, selected=p.selected))

    def _buy(self) -> None:
        assert self.goal is not None
        product = self.catalog.products[self._page.asin]
        goal_product = self.catalog.products[self.goal.asin]
        self._purchase = (product.asin, purchase_reward(product, list(self._page.selected.values()), self.goal, goal_product))

    # -- observation ---------------------------------------------------------------------

    def _observe(self) -> Observation:
        assert self.goal is not None
        lines = [f"Instruction: {self.goal.instruction}"]
        actions: dict[str, Callable[[], None]] = {}
        kind = self._page.kind
        if kind == "search":
            lines.append("Page: search")
            state = "\n".join(lines)
            queries = [self.goal.instruction, *(self.query_proposer(state) if self.query_proposer else ())]
            for query in queries:
                query = ascii_text(query.replace("[", " ").replace("]", " "))
                if query:
                    actions[f"{SEARCH}{query}]"] = lambda q=query: self._run_search(q)
        elif kind == "results":
            lines += self._results_lines(actions)
        else:
            lines += self._product_lines(actions)
        if kind != "search":
            actions[BACK] = self._to_search
        if kind != "search" and not (kind == "results" and self._page.number == 1):
            actions[PREV] = self._back  # the previous results page, or the page an item was opened from
        self._candidates, self._dropped = action_slots(actions, self.max_actions)
        self._actions = {c: actions[c] for c in self._candidates}
        return {"state": "\n".join(lines), "candidates": self._candidates}

    def _results_lines(self, actions: dict[str, Callable[[], None]]) -> list[str]:
        p = self._page
        pages = max(1, -(-len(p.results) // self.results_per_page))
        first = (p.number - 1) * self.results_per_page
        shown = p.results[first:first + self.results_per_page]
        lines = [f'Page: results for "{p.query}", page {p.number} of {pages}'
                 + ("" if p.results else " (no product matches)")]
        for rank, asin in enumerate(shown, start=first + 1):
            product = self.catalog.products[asin]
            name = self._short_title(product, actions)
            actions[f"click[{name}]"] = lambda a=asin: self._open(a)
            lines.append(f"{rank}. {product.title} | ${product.price:.2f}")
        if p.number < pages:
            actions[NEXT] = self._next_page
        return lines

    def _short_title(self, product: Product, taken: dict[str, Callable[[], None]]) -> str:
        words = product.title.replace("[", "(").replace("]", ")").split()
        name = " ".join(words[: self.title_words])
        return name if f"click[{name}]" not in taken else f"{name} ({product.asin})"

    def _product_lines(self, actions: dict[str, Callable[[], None]]) -> list[str]:
        p = self._page
        product = self.catalog.products[p.asin]
        if p.kind in DETAIL_PAGES:
            text = product.description if p.kind == "description" else " ".join(product.bullets)
            text = text[: self.detail_chars] or "(empty)"
            return [f"Page: {p.kind} of {' '.join(product.title.split()[: self.title_words])}", text]
        lines = ["Page: item", f"Title: {product.title}",
                 f"Price: ${product.price:.2f}" + (f" | Rating: {product.rating}" if product.rating else "")]
        for name, values in product.options.items():
            chosen = p.selected.get(name)
            lines.append(f"{name}: {', '.join(values)}" + (f" (selected: {chosen})" if chosen else ""))
            for value in values:
                if value != chosen and f"click[{value}]" not in actions:
                    actions[f"click[{value}]"] = lambda n=name, v=value: self._select(n, v)
        for kind in DETAIL_PAGES:
            actions[f"click[{kind}]"] = lambda k=kind: self._detail(k)
        actions[BUY] = self._buy
        return lines

    def _info(self) -> Info:
        assert self.goal is not None
        info: Info = {"won": False, "lost": False, "score": 0.0, "max_score": 1.0, "steps": self._steps,
                      "candidates_truncated": self._dropped, "page": self._page.kind, "goal_asin": self.goal.asin}
        if self._purchase is not None:
            asin, reward = self._purchase
            info.update(won=reward.reward >= 1.0, score=reward.reward, purchased_asin=asin, r_type=reward.r_type,
                        attributes_matched=reward.attributes_matched, options_matched=reward.options_matched,
                        price_ok=reward.price_ok)
        return info


@lru_cache(maxsize=4)
def _search_engine(data_dir: str) -> ProductSearch:
    """One BM25 index per data folder and process (envs of a runner share it)."""
    return ProductSearch(list(load_catalog(data_dir).products.values()))
