"""Does a state's nearest cached neighbour want the same action? The ceiling on semantic caching.

What it shows: a semantic cache answers a state with the prior of the most similar state it has
stored. That is harmless only where similar states call for the same command. This replays the
states of a demonstration dataset (`priorcache demos`: the expert's states, or with `--learner`
the states a greedy tuned prior reaches, expert-labelled) in their recorded order, as an
unbounded cache would see them, and reports per cosine threshold delta: the share of states
the cache would answer (hit rate; 1 / (1 - hit rate) is the best query saving), and among
those hits the share whose neighbour's expert command is the state's own expert command (and
the share whose neighbour has the identical candidate set, what `prior.cache.candidates=same`
requires). Exact repeats (same text and candidates, an exact hit) are the first row. No LLM
is involved: the expert labels stand in for what an informative prior should put first, and the
numbers are exact for the recorded states. Embeddings: the platform's state embedder (all-MiniLM-L6-v2), as the cache uses it.

How to run:  .venv/bin/python benchmarks/neighbour_actions.py [.cache/demos/alfworld/demos.jsonl ...]
             (datasets: `make .cache/demos/alfworld/card.json`, or `priorcache demos alfworld --learner`)

Results to expect (2026-11-28; ALFWorld valid_train expert demos, 2,542 states, and the states
a greedy tuned prior reached in DAgger round 1, 931 states): the cache would answer 57-60% of
states at delta 0.95, but the neighbour's expert command is the state's own for only 24-27% of
them, and 46-51% even at 0.995 (9-14% answered); exact repeats (3-5% of states) agree 46% (the
expert's own search order is not in the text) and 88%. See docs/cache.md ("Why ALFWorld's
semantic hits lose the prior").
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from priorcache.platform.embed import TextEmbedder  # noqa: E402

THRESHOLDS = (0.90, 0.95, 0.97, 0.98, 0.99, 0.995)


def load_states(path: Path) -> list[dict]:
    """The dataset's recorded steps (`state`, `candidates`, expert `action`), in order."""
    with path.open() as f:
        return [json.loads(line) for line in f if line.strip()]


def neighbour_table(steps: list[dict], embedder: TextEmbedder, thresholds: tuple[float, ...]) -> list[str]:
    """Markdown rows: exact repeats, then one row per threshold (nearest earlier state)."""
    n = len(steps)
    embeddings = np.concatenate([embedder.embed([s["state"] for s in steps[i:i + 64]]) for i in range(0, n, 64)])
    similarity = embeddings @ embeddings.T
    nearest = [int(np.argmax(similarity[i, :i])) if i else -1 for i in range(n)]

    def row(label: str, pairs: list[tuple[int, int]]) -> str:
        same_action = np.mean([steps[j]["action"] == steps[i]["action"] for i, j in pairs]) if pairs else np.nan
        same_cands = np.mean([steps[j]["candidates"] == steps[i]["candidates"] for i, j in pairs]) if pairs else np.nan
        hit_rate = len(pairs) / n
        return (f"| {label} | {hit_rate:.1%} | {1 / (1 - hit_rate):.2f}x | {same_action:.0%} | {same_cands:.0%} |")

    first_seen: dict[tuple[str, tuple[str, ...]], int] = {}
    exact = []
    for i, step in enumerate(steps):
        key = (step["state"], tuple(step["candidates"]))  # what an exact hit needs
        if key in first_seen:
            exact.append((i, first_seen[key]))
        first_seen.setdefault(key, i)
    rows = [row("same text and candidates", exact)]
    for delta in thresholds:
        rows.append(row(f"cosine >= {delta}", [(i, nearest[i]) for i in range(1, n)
                                               if similarity[i, nearest[i]] >= delta]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", nargs="*", type=Path, default=[Path(".cache/demos/alfworld/demos.jsonl")])
    args = parser.parse_args()
    embedder = TextEmbedder(None, n_threads=1)
    for path in args.datasets:
        if not path.is_file():
            raise SystemExit(f"{path}: no such dataset; record one with `priorcache demos alfworld` "
                             "(or `make .cache/demos/alfworld/card.json`)")
        steps = load_states(path)
        print(f"\n{path} ({len(steps)} states)\n")
        print("| cache answers when | hit rate | best query saving | neighbour's expert command is the state's | same candidate set |")
        print("|---|---|---|---|---|")
        print("\n".join(neighbour_table(steps, embedder, THRESHOLDS)))


if __name__ == "__main__":
    main()
