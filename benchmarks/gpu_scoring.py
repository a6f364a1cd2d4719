"""GPU scoring benchmark: latency and throughput of the vLLM backend on batches like the project's.

What it shows: what one replica call costs on a GPU. Each call scores fresh TextWorld-like
states of about 200 tokens, each with 10, 20 or 30 candidate commands of 5-15 tokens, behind
the shipped textworld-v1 prompt prefix, one state per call (a lone miss) or 8 (a full
`prior.llm.max_batch`). For every shape it times `repeats` calls and reports the call latency
(p50, p95) and the throughput in candidates scored per second. Then it checks the scores: the
same prefix + state + candidate token ids go through transformers (fp32, on the GPU), and the
report gives the largest difference of a candidate's mean log-probability and how often both
pick the same best candidate. It writes the tables, the GPU's name (nvidia-smi), the software
versions and, for a folder made by benchmarks/random_weights_model.py, its RANDOM_WEIGHTS.md
note to docs/results/gpu.md.

How to run (a GPU machine with the vLLM environment, cluster/requirements-vllm.txt, and a small
Hugging Face causal LM in a local folder, e.g. one made by benchmarks/random_weights_model.py):
    /home/ray/vllm-venv/bin/python benchmarks/gpu_scoring.py --model /models/gemma-3-270m
It stops with a message, writing nothing, when there is no NVIDIA GPU or no vLLM.

Results to expect (H100 80GB, vLLM 0.22.1, Gemma 3 270M architecture with random weights;
docs/results/gpu.md): 72 ms p50 for one state with 10 candidates, 810 ms for 8 states x 30;
130-310 candidates/s; vLLM's scores within 0.02 nats of transformers' fp32 scores, the same best
candidate in every state. The whole-sequence prompt log-probs over a 262k vocabulary, not the
model, set the pace (docs/results/gpu.md).
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


def transformers_scores(model_dir: str, prefix_ids: list[int], prompt_ids: list[list[int]],
                        candidate_ids: list[list[list[int]]]) -> list[np.ndarray]:
    """Mean log p of each candidate's tokens after prefix + prompt, from transformers in fp32 (on the GPU if any).

    Built apart from VllmBackend, from its documented token layout, so a slip in the backend's
    indexing of vLLM's prompt log-probs shows up as a disagreement.
    """
    import torch
    from transformers import AutoModelForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    scores = []
    with torch.no_grad():
        for prompt, candidates in zip(prompt_ids, candidate_ids):
            row = []
            for candidate in candidates:
                ids = torch.tensor([prefix_ids + prompt + candidate], device=device)
                logp = model(input_ids=ids).logits[0, :-1].float().log_softmax(-1)
                picked = logp.gather(1, ids[0, 1:, None])[:, 0]
                row.append(picked[-len(candidate):].mean().item())
            scores.append(np.asarray(row))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="Hugging Face model folder (or a hub id in the local cache)")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per shape")
    parser.add_argument("--candidates", type=int, nargs="+", default=[10, 20, 30], help="candidates per state")
    parser.add_argument("--states", type=int, nargs="+", default=[1, 8], help="states per call")
    parser.add_argument("--dtype", default="auto", help="prior.llm.dtype")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.6,
                        help="vLLM's share of the GPU; the rest holds the transformers check")
    parser.add_argument("--check-states", type=int, default=8, help="states scored by both vLLM and transformers")
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

    check_ids = range(10**7, 10**7 + args.check_states)
    check_prompts = [template.render_state(state=state_text(i, tokens_of)) for i in check_ids]
    check_lists = [[render(c) for c in commands(20, i)] for i in check_ids]
    vllm_scores = backend.score(check_prompts, check_lists)

    def encode(text: str) -> list[int]:
        return list(backend.tokenizer.encode(text, add_special_tokens=False))

    prefix_ids = list(backend.tokenizer.encode(template.prefix, add_special_tokens=True))
    reference = transformers_scores(args.model, prefix_ids, [encode(p) for p in check_prompts],
                                    [[encode(c) for c in cands] for cands in check_lists])
    gaps = np.concatenate([np.abs(a - b) for a, b in zip(vllm_scores, reference)])
    same_best = np.mean([np.argmax(a) == np.argmax(b) for a, b in zip(vllm_scores, reference)])
    spread = np.mean([np.ptp(b) for b in reference])
    prefix_tokens = len(prefix_ids)
    header = ["| states per call | candidates per state | latency p50 ms | latency p95 ms | candidates/s |",
              "|---:|---:|---:|---:|---:|"]
    table = [f"| {s} | {c} | {p50:.1f} | {p95:.1f} | {rate:,.0f} |" for s, c, p50, p95, rate in rows]
    note_file = Path(args.model) / "RANDOM_WEIGHTS.md"
    weights = note_file.read_text().strip() if note_file.is_file() else "the folder's own weights"
    report = "\n".join([
        "# GPU scoring: the vLLM backend",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d} by `benchmarks/gpu_scoring.py` (its docstring says how).",
        "",
        f"- GPU: {card}",
        f"- vLLM {vllm.__version__}, torch {torch.__version__}, Python {platform.python_version()}",
        f"- model: `{backend.model_id}` (dtype {args.dtype}), prefix caching on; prompt prefix textworld-v1, "
        f"{prefix_tokens} tokens",
        f"- weights: {weights}",
        f"- states: {np.mean(state_sizes):.0f} tokens on average; candidates: {min(command_sizes)}-"
        f"{max(command_sizes)} tokens (mean {np.mean(command_sizes):.1f}); {args.repeats} timed calls per row, "
        "fresh states every call, after one warm-up call",
        f"- vLLM {vllm.__version__} does not read its prefix cache for prompt-log-prob requests: every "
        "candidate prefills prefix + state + candidate",
        "",
        *header,
        *table,
        "",
        "## Scores against transformers",
        "",
        f"{args.check_states} fresh states x 20 candidates, the same token ids scored by vLLM (this backend) and by "
        "transformers in fp32 on the same GPU:",
        "",
        "| candidates | largest difference (nats) | mean difference (nats) | same best candidate | mean spread of "
        "a state's scores (nats) |",
        "|---:|---:|---:|---:|---:|",
        f"| {gaps.size} | {gaps.max():.3f} | {gaps.mean():.3f} | {same_best:.0%} | {spread:.2f} |",
        "",
    ])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
