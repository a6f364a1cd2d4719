"""Make a Hugging Face model folder with the shipped Gemma 3 270M's architecture and tokenizer, and random weights.

What it is for: timing the vLLM backend (benchmarks/gpu_scoring.py) where the real HF weights
cannot be had (no hub access) or cannot be moved (a GPU machine reached only through a small
upload). Latency and throughput depend on the architecture, the dtype and the token counts,
not on the weights' values, so they transfer to the real model; the scores themselves are
meaningless. The config and tokenizer come from the GGUF that the llama.cpp backend serves, so
the token sequences are exactly those the project scores (the tokenizer is rebuilt from the
GGUF's vocabulary and checked against llama.cpp's by tests/platform/llm/test_random_weights_model.py).

`--init-std` sets the weights' standard deviation. The default (0.05, 2.5 times Gemma's
initializer) gives candidate scores of about -11 to -15 nats with a spread of a few nats, like
the real model's, so a check of vLLM's scores against another implementation can tell
candidates apart (at Gemma's 0.02 every token scores about log(1/262144)).

How to run (two steps, so that the second runs where only transformers and torch are):
    .venv/bin/python benchmarks/random_weights_model.py config /tmp/gemma3-skeleton
    python benchmarks/random_weights_model.py weights /tmp/gemma3-skeleton /models/gemma3-270m-random
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokenizers import Tokenizer

TOKEN_NORMAL, TOKEN_CONTROL, TOKEN_USER_DEFINED = 1, 3, 4
"""GGUF token types (SentencePiece's piece types)."""

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")

NOTE_FILE = "RANDOM_WEIGHTS.md"
"""Written into the model folder, so that nobody mistakes its scores for the real model's."""


def gguf_tokenizer(gguf: Path) -> "Tokenizer":
    """The GGUF's SentencePiece-BPE vocabulary as a Hugging Face `tokenizers` BPE tokenizer.

    transformers' own GGUF conversion turns Gemma 3's vocabulary into a Unigram model, which
    splits words into about twice as many tokens as llama.cpp does. SentencePiece BPE ranks the
    merge a+b by the score of the merged piece, so the merges are every split of a normal
    piece into two pieces of the vocabulary, best score first; control and user-defined pieces
    (turn markers, runs of whitespace) are matched whole before BPE, as SentencePiece does.
    """
    from gguf import GGUFReader
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, processors
    from tokenizers.models import BPE

    reader = GGUFReader(gguf)

    def field(key: str) -> list:
        values = reader.fields[key]
        return [values.parts[i] for i in values.data]

    pieces = [bytes(p).decode("utf-8") for p in field("tokenizer.ggml.tokens")]
    scores = [float(p[0]) for p in field("tokenizer.ggml.scores")]
    kinds = [int(p[0]) for p in field("tokenizer.ggml.token_type")]
    vocab = {piece: i for i, piece in enumerate(pieces)}
    ranked = sorted(
        (-scores[vocab[piece]], vocab[piece], piece[:cut], piece[cut:])
        for piece, kind in zip(pieces, kinds) if kind == TOKEN_NORMAL
        for cut in range(1, len(piece)) if piece[:cut] in vocab and piece[cut:] in vocab
    )
    tokenizer = Tokenizer(BPE(vocab=vocab, merges=[(a, b) for _, _, a, b in ranked], unk_token="<unk>",
                              fuse_unk=True, byte_fallback=True))
    tokenizer.normalizer = normalizers.Replace(" ", "\u2581")
    tokenizer.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    whole = [(piece, kind) for piece, kind in zip(pieces, kinds) if kind in (TOKEN_CONTROL, TOKEN_USER_DEFINED)]
    tokenizer.add_tokens([AddedToken(p, normalized=False) for p, kind in whole if kind == TOKEN_USER_DEFINED])
    tokenizer.add_special_tokens([AddedToken(p, special=True, normalized=False) for p, kind in whole if kind == TOKEN_CONTROL])
    # llama.cpp adds BOS to a tokenized prompt (tokenizer.ggml.add_bos_token); so does this.
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    return tokenizer


def write_config(out: Path) -> None:
    """config.json and tokenizer files of the shipped GGUF (prior.llm.model_path's default)."""
    from transformers import AutoConfig

    from priorcache.platform.llm.model_files import cache_dir_from_env, default_model_path

    gguf = default_model_path(cache_dir_from_env())
    config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # transformers leaves the class unnamed for GGUF configs; vLLM picks its model by this field.
    config.architectures = ["Gemma3ForCausalLM"]
    config.save_pretrained(out)
    gguf_tokenizer(gguf).save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<bos>", "eos_token": "<eos>",
        "unk_token": "<unk>", "pad_token": "<pad>", "model_max_length": config.max_position_embeddings,
    }, indent=2))
    print(f"config and tokenizer of {gguf.name} written to {out}")


def write_weights(skeleton: Path, out: Path, init_std: float, seed: int) -> None:
    """Random bf16 weights for the skeleton's config, saved with its tokenizer as a model folder."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    config = AutoConfig.from_pretrained(skeleton)
    config.initializer_range = init_std
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(out)
    for name in TOKENIZER_FILES:
        shutil.copy(skeleton / name, out / name)
    (out / NOTE_FILE).write_text(
        f"Random weights (normal, std {init_std}, seed {seed}) with the architecture and tokenizer of the shipped "
        f"Gemma 3 270M GGUF (config folder {skeleton.name}): for timing only; its scores carry no information.\n"
    )
    print(json.dumps({"model": str(out), "parameters": sum(p.numel() for p in model.parameters())}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    config = steps.add_parser("config", help="config and tokenizer from the shipped GGUF")
    config.add_argument("out", type=Path)
    weights = steps.add_parser("weights", help="random weights for a config folder")
    weights.add_argument("skeleton", type=Path)
    weights.add_argument("out", type=Path)
    weights.add_argument("--init-std", type=float, default=0.05)
    weights.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.step == "config":
        write_config(args.out)
    else:
        write_weights(args.skeleton, args.out, args.init_std, args.seed)


if __name__ == "__main__":
    main()
