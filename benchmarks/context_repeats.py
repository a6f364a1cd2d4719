"""Prompt context vs exact repeats: how often a state text recurs with k recent commands in it.

What it shows: the cost side of putting more context into the prompt (`env.history`). The
cache keys on the state text, so an exact-match cache can only answer a step whose text it has
seen before. This plays the same seeded random-policy episodes once per window k and reports,
side by side, the share of steps whose (state text, candidates) already occurred earlier in
the run: the exact-match hit rate an unbounded cache would reach. No LLM is involved, so the
numbers are exact for the traces played.

How to run:  .venv/bin/python benchmarks/context_repeats.py [--domain alfworld] [--episodes 20] [--windows 0 1 2 4]

Results to expect: see docs/prior.md ("Prompts with context"); the repeat rate falls as k grows.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from priorcache.demos import DOMAINS, resolve_target  # noqa: E402
from priorcache.envs.registry import make_text_env, resolve_env  # noqa: E402
from priorcache.platform.config import load_config  # noqa: E402


def repeat_rate(domain: str, window: int, episodes: int, max_steps: int) -> tuple[float, int]:
    """Share of steps whose (state, candidates) occurred earlier, and the number of steps."""
    cfg = load_config(resolve_target(domain)[0], [f"env.history={window}", f"env.max_steps={max_steps}"])
    env = make_text_env(resolve_env(cfg.env), "train")
    seen: set[tuple[str, tuple[str, ...]]] = set()
    repeats = steps = 0
    try:
        for episode in range(episodes):
            rng = np.random.default_rng(episode)  # the same actions for every window
            obs, _ = env.reset(seed=episode)
            done = False
            while not done:
                key = (obs["state"], tuple(obs["candidates"]))
                repeats += key in seen
                seen.add(key)
                steps += 1
                obs, _, terminated, truncated, _ = env.step(int(rng.integers(len(obs["candidates"]))))
                done = terminated or truncated
    finally:
        env.close()
    return repeats / steps, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domain", choices=sorted(DOMAINS), default="alfworld")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--max-steps", type=int, default=50)
    parser.add_argument("--windows", type=int, nargs="+", default=[0, 1, 2, 4])
    args = parser.parse_args()
    print(f"{args.domain}: {args.episodes} random-policy episodes of at most {args.max_steps} steps per window")
    base = None
    for window in args.windows:
        rate, steps = repeat_rate(args.domain, window, args.episodes, args.max_steps)
        base = rate if base is None else base
        ratio = f"{rate / base:.2f}x of k={args.windows[0]}" if base else "n/a"
        print(f"  k={window}: {rate:6.1%} of {steps} steps repeat an earlier state text ({ratio})")


if __name__ == "__main__":
    main()
