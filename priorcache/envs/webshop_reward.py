"""WebShop's reward for a purchase: type match times the share of goal requirements met.

    reward = r_type * (attributes matched + options matched + [price <= bound])
                    / (goal attributes + goal options + 1)

- `r_type` (is it the right kind of product?): 1 when the purchased product's search query
  equals the goal product's, or their category breadcrumbs share two levels, or more than
  0.2 of the goal title's content words are in the purchased title; else 0.5; then 0.1 when
  that title share is below 0.1 and 0 when it is 0 (WebShop's cascade, in its order).
- An attribute matches when one of the product's attributes is a fuzzy match
  (rapidfuzz `token_set_ratio` > 85) or it appears verbatim in the title, bullets or
  description.
- An option matches when one of the selected option values is a fuzzy match (> 85).
Success is a reward of 1.

Where this differs from WebShop's `get_reward`, and why: WebShop compares the titles' nouns
as tagged by spaCy's `en_core_web_lg`, a model this project cannot download; here the
"content words" are the lowercase word tokens that are not in `STOPWORDS` (function words
and the commonest adjectives of product titles). Buying the goal product still gives a title
share of 1, so successes are unchanged; partial credit for other products can differ.
WebShop also normalises colour names ("grey" -> "gray") before matching options; the fuzzy
ratio already matches most of those, so that table is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from rapidfuzz import fuzz

from priorcache.envs.webshop_data import Goal, Product
from priorcache.envs.webshop_search import tokens

FUZZY_MATCH = 85.0
STOPWORDS = frozenset(
    "a an and are as at be by for from in into is it of on or the to with without your you our "
    "x pcs pc pack set new best premium high quality great large small big mini extra super "
    "men women mens womens kids".split()
)


@dataclass(frozen=True)
class PurchaseReward:
    """A purchase's reward and its parts (logged, so a score can be explained)."""

    reward: float
    r_type: float
    attributes_matched: int
    options_matched: int
    price_ok: bool


def content_words(title: str) -> set[str]:
    """The words of a title that name what it is (see the module docstring)."""
    return {t for t in tokens(title) if t not in STOPWORDS and not t.isdigit() and len(t) > 1}


def type_reward(product: Product, goal_product: Product) -> float:
    """`r_type`: how surely `product` is the same kind of product as the goal's."""
    wanted = content_words(goal_product.title)
    title_share = len(content_words(product.title) & wanted) / len(wanted) if wanted else 0.2
    levels = {x.strip() for x in product.product_category.split("›")} - {""}
    goal_levels = {x.strip() for x in goal_product.product_category.split("›")} - {""}
    same_kind = product.query == goal_product.query or len(levels & goal_levels) >= 2 or title_share > 0.2
    if title_share == 0.0:
        return 0.0
    if title_share < 0.1:
        return 0.1
    return 1.0 if same_kind else 0.5


def _fuzzy_in(wanted: str, offered: Iterable[str]) -> bool:
    return any(fuzz.token_set_ratio(o, wanted) > FUZZY_MATCH for o in offered)


def attributes_matched(product: Product, goal: Goal) -> int:
    """Goal attributes the product has (its attribute list, fuzzily, or its text, verbatim)."""
    text = " ".join((product.title, *product.bullets, product.description)).lower()
    return sum(_fuzzy_in(a, product.attributes) or a.lower() in text for a in goal.attributes)


def purchase_reward(product: Product, selected: Sequence[str], goal: Goal, goal_product: Product) -> PurchaseReward:
    """The reward of buying `product` with the option values `selected`, for `goal`."""
    r_type = type_reward(product, goal_product)
    n_attributes = attributes_matched(product, goal)
    n_options = sum(_fuzzy_in(o, selected) for o in goal.options)
    price_ok = product.price <= goal.price_upper
    share = (n_attributes + n_options + int(price_ok)) / (len(goal.attributes) + len(goal.options) + 1)
    return PurchaseReward(r_type * share, r_type, n_attributes, n_options, price_ok)
