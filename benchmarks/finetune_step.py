"""One LoRA training step of the prior LLM on CPU: fp32 vs bf16 autocast, 1 vs 2 threads.

What it shows: the seconds of one training step (forward and backward of `target_logprobs`,
the loss `priorcache prior finetune` minimises) on the same batches of ALFWorld expert steps,
for each setting side by side in one process, and the ratio of each to fp32 with 1 thread.
Whether bf16 autocast helps depends on the CPU: with bf16 instructions (avx512_bf16,
amx_bf16) it can; without them torch emulates bf16 and a step gets slower. `train.bf16`'s
default follows `native_bf16()`, which this benchmark prints too.

How to run:  .venv/bin/priorcache demos alfworld env.alfworld.max_games=0   # once, the batches' source
             .venv/bin/python benchmarks/finetune_step.py [--batches 3] [--batch-size 8]
             (run it alone: two busy processes on 2 cores distort every row; ~4 minutes)

Results to expect (2026-11-28, the 2-core VM, AVX-512 without avx512_bf16, idle; seconds of
three batches of 8): fp32 1 thread 6.8 / 32.0 / 9.5, fp32 2 threads 3.9 / 12.2 / 5.8 (0.45x),
bf16 1 thread 20.3 / 60.6 / 29.8 (2.3x); native_bf16() False. Batches differ by their states'
length, hence the spread within a row.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch

from priorcache.demos import load_demos
from priorcache.platform.llm.finetune import LORA_MODULES, native_bf16
from priorcache.platform.llm.finetune_data import ExampleEncoder
from priorcache.platform.llm.llama_tokens import LlamaTokenizer
from priorcache.platform.llm.lora_model import load_gguf_model, target_logprobs
from priorcache.platform.llm.model_files import cache_dir_from_env, resolve_model_path
from priorcache.platform.llm.prompts import load_prompt

SETTINGS = ((1, False), (2, False), (1, True))
"""(threads, bf16 autocast) rows, the first being the reference."""


def step_seconds(model: torch.nn.Module, batch: list, threads: int, bf16: bool) -> float:
    """Wall seconds of one forward and backward pass over `batch` (gradients then dropped)."""
    torch.set_num_threads(threads)
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logprobs = torch.cat(target_logprobs(model, batch))
    (-logprobs.float().mean()).backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    from peft import LoraConfig, get_peft_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demos", default=".cache/demos/alfworld", help="demonstrations the batches come from")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    gguf = resolve_model_path(None, cache_dir_from_env())
    steps = load_demos(args.demos)
    encoder = ExampleEncoder(load_prompt("textworld-v1"), LlamaTokenizer(gguf))
    rng = random.Random(0)
    batches = [[encoder.example(s).tokens for s in rng.sample(steps, args.batch_size)] for _ in range(args.batches)]
    model = get_peft_model(load_gguf_model(gguf), LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05,
                                                            target_modules=list(LORA_MODULES)))
    model.train()
    print(f"native_bf16(): {native_bf16()}; {args.batches} batches of {args.batch_size} from {args.demos}")
    reference = None
    for threads, bf16 in SETTINGS:
        seconds = [step_seconds(model, batch, threads, bf16) for batch in batches]
        total = sum(seconds)
        reference = reference or total
        print(f"fp32{'+bf16 autocast' if bf16 else ''}, {threads} thread(s): "
              + " / ".join(f"{s:.1f}" for s in seconds) + f" s per step; {total / reference:.2f}x the first row")


if __name__ == "__main__":
    main()
