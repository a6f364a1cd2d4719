"""GPU scoring benchmark: latency and throughput of the vLLM backend on batches like the project's.

What it shows: what one replica call costs on a GPU. Each call scores fresh TextWorld-like
states of about 200 tokens, each with 10, 20 or 30 candidate commands of 5-15 tokens, behind
the shipped textworld-v1 prompt prefix, one state per call (a lone miss) or 8 (a full
`prior.llm.max_batch`). For every shape it times `repeats` calls and reports the call latency
(p50, p95) and the throughput in candidates scored per second, then writes the table, the GPU's
name (nvidia-smi) and the software versions to docs/results/gpu.md.

How to run (a GPU machine with the vLLM environment, cluster/requirements-vllm.txt, and a small
Hugging Face causal LM in a local folder):
    /home/ray/vllm-venv/bin/python benchmarks/gpu_scoring.py --model /models/gemma-3-270m
It stops with a message, writing nothing, when there is no NVIDIA GPU or no vLLM.

Results to expect: not measured yet -- no GPU was available where this script was written, so
docs/results/gpu.md does not exist until someone runs it on one.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from priorcache.platform.llm.backend import BackendNotInstalledError
from priorcache.platform.llm.prompts import load_prompt
from priorcache.platform.llm.vllm_backend import VllmBackend, import_vllm

REPO = Path(__file__).resolve().parents[1]
STATE_TOKENS = 200
ROOMS = ["kitchen", "bedroom", "garden", "cellar", "attic", "study", "hallway", "pantry", "workshop", "library"]
THINGS = ["wooden chest", "brass key", "rusty iron lantern", "red apple", "leather-bound book",
          "glass bottle of water", "silver coin", "folded paper map", "wicker basket", "steel crowbar"]
VERBS = ["take", "open", "examine", "put", "drop", "unlock", "close", "insert", "eat", "push"]


class BenchmarkError(RuntimeError):
    """The machine cannot run this benchmark; the message says what is missing."""


def gpu_name() -> str:
    """Name(s) of the NVIDIA GPUs, from nvidia-smi."""
    try:
        result = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30)
    except FileNotFoundError as err:
        raise BenchmarkError("no NVIDIA GPU here: nvidia-smi is not installed; run this on a GPU machine") from err
    names = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not names:
        reason = result.stderr.strip() or f"exit status {result.returncode}"
        raise BenchmarkError(f"no NVIDIA GPU here: nvidia-smi failed ({reason})")
    return ", ".join(names)


def state_text(i: int, tokens_of: Callable[[str], int], target: int = STATE_TOKENS) -> str:
    """A TextWorld-like state (goal, room, objects, exits, inventory) of about `target` tokens."""
    rng = np.random.default_rng(i)
    room = ROOMS[i % len(ROOMS)]
    lines = [f"Goal: find the {THINGS[i % len(THINGS)]} and bring it to the {ROOMS[(i + 3) % len(ROOMS)]}.",
             f"-= {room.title()} =-", f"You are in a {room}. This is state number {i}."]
    while tokens_of("\n".join(lines)) < target:
        thing, place, exit_ = rng.choice(THINGS), rng.choice(THINGS), rng.choice(["north", "south", "east", "west"])
        lines.append(f"There is a {thing} here, next to a {place}; an exit leads {exit_}.")
    return "\n".join(lines)


def commands(n: int, seed: int) -> list[str]:
    """`n` distinct commands of roughly 5-15 tokens."""
    rng = np.random.default_rng(seed)
    out: list[str] = []
    while len(out) < n:
        verb, thing, other = rng.choice(VERBS), rng.choice(THINGS), rng.choice(THINGS)
        command = f"{verb} {thing}" + (f" with {other}" if rng.random() < 0.5 else "")
        if command not in out:
            out.append(command)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="Hugging Face model folder (or a hub id in the local cache)")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per shape")
    parser.add_argument("--candidates", type=int, nargs="+", default=[10, 20, 30], help="candidates per state")
    parser.add_argument("--states", type=int, nargs="+", default=[1, 8], help="states per call")
    parser.add_argument("--dtype", default="auto", help="prior.llm.dtype")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "gpu.md")
    args = parser.parse_args()
    try:
        card = gpu_name()
        vllm = import_vllm()
    except (BenchmarkError, BackendNotInstalledError) as err:
        sys.exit(f"gpu_scoring: {err}")
    import torch

    template = load_prompt("textworld-v1")
    backend = VllmBackend(args.model, template.prefix, gpu_memory_utilization=args.gpu_memory_utilization,
                          max_model_len=2048, dtype=args.dtype)

    def tokens_of(text: str) -> int:
        return len(backend.tokenizer.encode(text, add_special_tokens=False))

    render = template.render_candidate
    warm_up = template.render_state(state=state_text(10**8, tokens_of))
    backend.score([warm_up], [[render(c) for c in commands(10, 10**8)]])
    rows, serial = [], iter(range(10**9))
    state_sizes, command_sizes = [], []
    for n_states in args.states:
        for n_candidates in args.candidates:
            latencies = []
            for _ in range(args.repeats):
                ids = [next(serial) for _ in range(n_states)]
                states = [state_text(i, tokens_of) for i in ids]
                lists = [[render(c) for c in commands(n_candidates, i)] for i in ids]
                state_sizes += [tokens_of(s) for s in states]
                command_sizes += [tokens_of(c) for cands in lists for c in cands]
                prompts = [template.render_state(state=s) for s in states]
                started = time.perf_counter()
                backend.score(prompts, lists)
                latencies.append((time.perf_counter() - started) * 1e3)
            ms = np.asarray(latencies)
            rows.append((n_states, n_candidates, float(np.median(ms)), float(np.percentile(ms, 95)),
                         n_states * n_candidates * len(ms) / (ms.sum() / 1e3)))

    prefix_tokens = len(backend.tokenizer.encode(template.prefix, add_special_tokens=True))
    header = ["| states per call | candidates per state | latency p50 ms | latency p95 ms | candidates/s |",
              "|---:|---:|---:|---:|---:|"]
    table = [f"| {s} | {c} | {p50:.1f} | {p95:.1f} | {rate:,.0f} |" for s, c, p50, p95, rate in rows]
    report = "\n".join([
        "# GPU scoring: the vLLM backend",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d} by `benchmarks/gpu_scoring.py` (its docstring says how).",
        "",
        f"- GPU: {card}",
        f"- vLLM {vllm.__version__}, torch {torch.__version__}, Python {platform.python_version()}",
        f"- model: `{backend.model_id}` (dtype {args.dtype}), prefix caching on; prompt prefix textworld-v1, "
        f"{prefix_tokens} tokens",
        f"- states: {np.mean(state_sizes):.0f} tokens on average; candidates: {min(command_sizes)}-"
        f"{max(command_sizes)} tokens (mean {np.mean(command_sizes):.1f}); {args.repeats} timed calls per row, "
        "fresh states every call, after one warm-up call",
        "- vLLM 0.33 does not read its prefix cache for prompt-log-prob requests: every candidate "
        "prefills prefix + state + candidate",
        "",
        *header,
        *table,
        "",
    ])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
