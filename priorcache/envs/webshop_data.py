"""WebShop's 1,000-product catalogue and its shopping goals, read from `shared/data/webshop`.

`load_catalog()` reads the three files the data folder's README describes into `Product`s
and the goal sources; `Catalog.goal(split, rng)` draws one `Goal` the way WebShop builds
its synthetic goals:

- a product that has a crowd-written instruction (415 of the 1,000), uniformly;
- one value for each of its customisation options (WebShop enumerates every combination as
  its own goal; drawing one per reset samples the same set), appended as
  " with size: large, and color: black";
- a price bound: two of the first four multiples of $10 above the product's price, the larger
  one (WebShop's rule), appended as ", and price lower than 40.00 dollars".

Splits are fixed and by product, so no evaluation product is ever a training goal (WebShop
splits its goal list at random, which puts the same product, with other options, on both
sides): `eval` holds the instructed products whose ASIN digest is 0 modulo 5 (88 of them),
`train` the other 327, and `human` the 13 human-written goals whose product is in the set
(evaluation only; they may name training products, with their own wording and options).

Text is folded to printable ASCII ("Women’s" -> "Women's", "é" -> "e"; `ascii_text`), the
charset text envs declare, so observations stay inside their space.

A product's price is drawn once, uniformly in its listed range ("$19.99 - $27.99") with a
generator seeded by its ASIN, so every process sees the same prices (WebShop draws them at
load time). What the original data has and this loader does not use: images, and reviews
(not shipped), so there is no reviews page.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

WEBSHOP_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "webshop"
"""Where the shipped product data lies (`/work/shared/data/webshop` on this project's machines)."""
DATA_ENV_VAR = "PRIORCACHE_WEBSHOP_DATA"
"""Environment variable that overrides `WEBSHOP_DATA` (config key `env.webshop.data_dir` wins)."""
FILES = ("items_shuffle_1000.json", "items_ins_v2_1000.json", "items_human_ins.json")
SPLITS = ("train", "eval", "human")
EVAL_MODULUS = 5
PRICE_STEPS = tuple(10.0 * i for i in range(1, 100))
"""WebShop's candidate price bounds."""
NO_PRICE_BOUND = 1_000_000.0
"""A product above every candidate bound gets no price clause (WebShop's convention)."""


class WebShopDataError(ValueError):
    """The WebShop data folder (config key `env.webshop.data_dir`) is missing or malformed."""


@dataclass(frozen=True)
class Product:
    """One product page."""

    asin: str
    title: str
    price: float
    category: str
    """WebShop's top-level category (beauty, electronics, fashion, garden, grocery)."""
    query: str
    """The search query that found the product when WebShop was scraped (its type)."""
    product_category: str
    """Breadcrumb, e.g. "Beauty & Personal Care › Skin Care › Face"."""
    description: str
    bullets: tuple[str, ...]
    attributes: tuple[str, ...]
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Option name (lowercase) -> its values (lowercase), in page order."""
    rating: str = ""
    instruction: str = ""
    """The crowd-written instruction ("" for products without one)."""
    instruction_attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Goal:
    """What to buy: the text the agent reads and what the reward checks."""

    asin: str
    """The product the instruction was written for."""
    instruction: str
    attributes: tuple[str, ...]
    options: tuple[str, ...]
    """Option values the purchase must have."""
    price_upper: float


@dataclass(frozen=True)
class Catalog:
    """The products and the goal sources of one data folder."""

    products: dict[str, Product]
    splits: dict[str, tuple[str, ...]]
    """`train` / `eval`: instructed product ASINs; `human`: ASINs of the human goals, in order."""
    human_goals: tuple[dict[str, Any], ...]
    """The human goals, each `{asin, instruction, attributes, options}`."""

    def goal(self, split: str, rng: np.random.Generator) -> Goal:
        """A goal of `split` drawn with `rng` (see the module docstring)."""
        if split not in SPLITS:
            raise ValueError(f"WebShop goal split {split!r}: choose one of {', '.join(SPLITS)}")
        if split == "human":
            raw = self.human_goals[int(rng.integers(len(self.human_goals)))]
            upper, price_text = price_bound(self.products[raw["asin"]].price, rng)
            return Goal(raw["asin"], raw["instruction"].strip().rstrip(".") + price_text,
                        tuple(raw["attributes"]), tuple(raw["options"]), upper)
        asins = self.splits[split]
        product = self.products[asins[int(rng.integers(len(asins)))]]
        chosen = {name: values[int(rng.integers(len(values)))] for name, values in sorted(product.options.items())}
        option_text = ", and ".join(f"{name}: {value}" for name, value in chosen.items())
        upper, price_text = price_bound(product.price, rng)
        instruction = product.instruction + (f" with {option_text}" if option_text else "") + price_text
        return Goal(product.asin, instruction, product.instruction_attributes, tuple(chosen.values()), upper)


def price_bound(price: float, rng: np.random.Generator) -> tuple[float, str]:
    """(bound, instruction clause): the larger of two of the four $10 steps above `price`."""
    steps = [p for p in PRICE_STEPS if p > price][:4]
    if len(steps) < 2:
        return NO_PRICE_BOUND, ""
    upper = float(max(rng.choice(steps, size=2, replace=False)))
    return upper, f", and price lower than {upper:.2f} dollars"


def webshop_data_dir(data_dir: str | Path = "") -> Path:
    """`data_dir` if given, else $PRIORCACHE_WEBSHOP_DATA, else `WEBSHOP_DATA`; absolute."""
    return Path(data_dir or os.environ.get(DATA_ENV_VAR) or WEBSHOP_DATA).expanduser().resolve()


def check_data_dir(data_dir: str | Path = "") -> Path:
    """The data folder, or `WebShopDataError` naming the config key and the missing files."""
    folder = webshop_data_dir(data_dir)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise WebShopDataError(
            f"config key 'env.webshop.data_dir': {folder} lacks {', '.join(missing)}; point it (or "
            f"${DATA_ENV_VAR}) at the folder holding WebShop's 1,000-product files (shared/data/webshop)"
        )
    return folder


@lru_cache(maxsize=4)
def load_catalog(data_dir: str | Path = "") -> Catalog:
    """Read (once per process and folder) the catalogue; see the module docstring."""
    folder = check_data_dir(data_dir)
    try:
        raw_products = json.loads((folder / FILES[0]).read_text("utf-8"))
        annotations = json.loads((folder / FILES[1]).read_text("utf-8"))
        raw_human = json.loads((folder / FILES[2]).read_text("utf-8"))
        products = {p["asin"]: _product(p, annotations.get(p["asin"], {})) for p in raw_products}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise WebShopDataError(f"config key 'env.webshop.data_dir': {folder} holds malformed WebShop data ({err})") from err
    instructed = sorted(asin for asin, p in products.items() if p.instruction)
    evaluation = tuple(a for a in instructed if _digest(a) % EVAL_MODULUS == 0)
    human = tuple(
        {"asin": g["asin"], "instruction": ascii_text(g["instruction"]), "attributes": g["instruction_attributes"],
         "options": [ascii_text(o).lower() for o in g["instruction_options"]]}
        for goals in raw_human.values() for g in goals
        if g["asin"] in products and g["instruction_attributes"]
    )
    splits = {"train": tuple(a for a in instructed if a not in set(evaluation)), "eval": evaluation,
              "human": tuple(g["asin"] for g in human)}
    return Catalog(products, splits, human)


_PUNCTUATION = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-", "›": ">", "×": "x"})


def ascii_text(text: str) -> str:
    """`text` in printable ASCII on one line: typographic punctuation mapped, accents dropped."""
    folded = unicodedata.normalize("NFKD", text.translate(_PUNCTUATION)).encode("ascii", "ignore").decode()
    return " ".join(folded.split())


def _digest(asin: str) -> int:
    return int(hashlib.blake2b(asin.encode(), digest_size=8).hexdigest(), 16)


def _product(raw: dict[str, Any], annotation: dict[str, Any]) -> Product:
    asin = raw["asin"]
    bullets = raw.get("small_description") or []
    options = {
        ascii_text(name).lower(): tuple(dict.fromkeys(ascii_text(v["value"]).replace("/", " | ").lower() for v in values))
        for name, values in (raw.get("customization_options") or {}).items() if values
    }
    return Product(
        asin=asin,
        title=ascii_text(raw["name"]),
        price=_price(raw.get("pricing") or "", asin),
        category=raw["category"],
        query=raw["query"],
        product_category=raw.get("product_category") or "",
        description=ascii_text(raw.get("full_description") or ""),
        bullets=tuple(ascii_text(b) for b in (bullets if isinstance(bullets, list) else [bullets]) if b.strip()),
        attributes=tuple(annotation.get("attributes") or ()),
        options=options,
        rating=str(raw.get("average_rating") or ""),
        instruction=ascii_text(annotation.get("instruction") or ""),
        instruction_attributes=tuple(annotation.get("instruction_attributes") or ()),
    )


def _price(pricing: str, asin: str) -> float:
    """The product's price: its only listed price, or one drawn in its range (seeded by the ASIN)."""
    prices = [float(p) for p in re.findall(r"\d+(?:\.\d+)?", pricing.replace(",", ""))][:2]
    if not prices:
        return 100.0  # WebShop's price for an unpriced product
    if len(prices) == 1:
        return prices[0]
    rng = np.random.default_rng(_digest(asin))
    return round(float(rng.uniform(min(prices), max(prices))), 2)
