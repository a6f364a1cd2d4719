"""How much could a semantic cache save if it knew which hits are harmless? An oracle-gated bound.

What it shows: a greedy agent (argmax of the prior) keeps its path, and so its success, as long
as every prior it is served has the same argmax as the LLM's fresh prior. This plays the tuned
ALFWorld prior greedily through an exact-match cache (which serves exactly what the LLM would
answer), keeps every LLM answer, and then replays the answers in order as a semantic cache would
see them: a state is served from its nearest stored neighbour (cosine of the platform's state
embeddings, the neighbour's scores re-expressed over this state's commands by the cache's own
candidate remapping, `cache.core.remap`) only where that keeps the fresh argmax. No real gate knows this, so the
resulting saving is an upper bound for any nearest-neighbour semantic cache on this embedding
that keeps the greedy agent's success (and optimistic: served states are still counted as
stored neighbours for later ones). Per cosine floor delta it prints how many LLM answers such an
oracle would spare and the saving it would reach against no cache.

How to run:  .venv/bin/python benchmarks/oracle_gate.py [--episodes 40] [--max-steps 50] [--threads 2]

Results to expect (2026-11-29, 20 min on 2 cores): 12/40 won, 1,563 requests, 586 LLM answers
(exact matching: 2.67x); the nearest neighbour keeps the fresh argmax for about a third of the
states, so the bound is 3.95x with no similarity floor and 3.50x / 3.29x / 3.10x at cosine
0.90 / 0.95 / 0.98. See docs/cache.md ("An oracle-gated bound").
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from priorcache.envs.registry import make_text_env, resolve_env  # noqa: E402
from priorcache.experiment import init_ray  # noqa: E402
from priorcache.platform.cache.core import remap  # noqa: E402
from priorcache.platform.config import load_config  # noqa: E402
from priorcache.platform.prior_client import PriorClient  # noqa: E402

DELTAS = (0.0, 0.90, 0.95, 0.98)
EXPERIMENT = "experiments/alfworld_ppo_prior.yaml"
ADAPTER = "priorcache/platform/llm/adapters/alfworld-lora.gguf"


def play_greedy(episodes: int, max_steps: int, threads: int) -> tuple[list[dict], int, int]:
    """Greedy episodes through an exact cache: (the LLM's answers in order, requests, wins)."""
    cfg = load_config(EXPERIMENT, [
        f"env.max_steps={max_steps}", "env.alfworld.max_games=0", f"prior.llm.adapter_path={ADAPTER}",
        "prior.cache.mode=exact", "prior.cache.audit_rate=0", f"prior.llm.n_threads={threads}",
        f"prior.cache.namespace=oracle-gate-{time.strftime('%Y%m%d%H%M%S')}",
    ])
    init_ray(cfg.ray)
    client = PriorClient(cfg.prior)
    env = make_text_env(resolve_env(cfg.env), "eval")
    answers: list[dict] = []
    requests = wins = 0
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=episode)
            done = False
            while not done:
                candidates = tuple(obs["candidates"])
                prior = client.request(obs["state"], candidates)
                requests += 1
                if prior.source == "llm":
                    answers.append({"embedding": prior.embedding, "candidates": candidates, "logp": prior.logp})
                obs, _, terminated, truncated, _ = env.step(int(np.argmax(prior.logp)))
                done = terminated or truncated
            wins += int(terminated)
            print(f"episode {episode + 1}/{episodes}: {'won' if terminated else 'lost'}, {requests} requests, "
                  f"{len(answers)} LLM answers", flush=True)
    finally:
        env.close()
    return answers, requests, wins


def preserved_by_neighbour(answers: list[dict]) -> list[tuple[float, bool]]:
    """Per LLM answer after the first: (cosine to its nearest earlier answer, whether that
    neighbour's scores over this state's commands have the same argmax)."""
    embeddings = np.stack([a["embedding"] for a in answers])
    similarity = embeddings @ embeddings.T
    out = []
    for i in range(1, len(answers)):
        j = int(np.argmax(similarity[i, :i]))
        remapped, _ = remap(answers[j]["logp"], answers[j]["candidates"], answers[i]["candidates"])
        out.append((float(similarity[i, j]), int(np.argmax(remapped)) == int(np.argmax(answers[i]["logp"]))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--max-steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads of the LLM replica")
    args = parser.parse_args()
    answers, requests, wins = play_greedy(args.episodes, args.max_steps, args.threads)
    pairs = preserved_by_neighbour(answers)
    misses = len(answers)
    print(f"\ngreedy tuned prior, exact cache: {wins}/{args.episodes} won, {requests} prior requests, "
          f"{misses} LLM answers ({requests / misses:.2f}x)\n")
    print("| served from the nearest neighbour when | neighbour this near | of them argmax kept "
          "| LLM answers left | oracle-gated saving (bound) |")
    print("|---|---|---|---|---|")
    for delta in DELTAS:
        near = [kept for similarity, kept in pairs if similarity >= delta]
        left = misses - sum(near)
        print(f"| cosine >= {delta:.2f} and argmax kept | {len(near)} | {sum(near)} "
              f"({np.mean(near) if near else float('nan'):.0%}) | {left} | {requests / left:.2f}x |")


if __name__ == "__main__":
    main()
