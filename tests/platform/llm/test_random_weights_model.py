"""The random-weights model folder for GPU timing tokenizes exactly as llama.cpp does.

benchmarks/random_weights_model.py rebuilds Gemma 3's tokenizer from the shipped GGUF's
vocabulary; the GPU benchmark's token counts mean something only if its token ids are the
ones llama.cpp scores, so the two are compared on the shipped prompts and awkward text.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.gpu_scoring import commands, state_text
from benchmarks.random_weights_model import gguf_tokenizer
from priorcache.platform.llm.model_files import cache_dir_from_env, default_model_path
from priorcache.platform.llm.prompts import load_prompt

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def gguf() -> Path:
    return default_model_path(cache_dir_from_env())


def test_rebuilt_tokenizer_matches_llama_cpp(gguf: Path) -> None:
    from llama_cpp import Llama

    tokenizer = gguf_tokenizer(gguf)
    reference = Llama(str(gguf), vocab_only=True, verbose=False)
    template = load_prompt("textworld-v1")
    texts = [template.prefix, "héllo wörld ✓ 123  two  spaces\n\n\nnewlines\ttab", "go to countertop 2\n> open drawer 1"]
    texts += [template.render_state(state=state_text(i, lambda s: len(s) // 4)) for i in range(5)]
    texts += [template.render_candidate(c) for c in commands(20, 1)]
    for text in texts:
        assert tokenizer.encode(text, add_special_tokens=False).ids == reference.tokenize(
            text.encode(), add_bos=False, special=True), text
    bos = reference.token_bos()
    assert tokenizer.encode("look", add_special_tokens=True).ids == [bos, *reference.tokenize(b"look", add_bos=False)]


@pytest.mark.slow
def test_config_step_writes_a_folder_transformers_reads(tmp_path: Path) -> None:
    out = tmp_path / "skeleton"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "random_weights_model.py"), "config", str(out)],
                            capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["Gemma3ForCausalLM"] and config["vocab_size"] == 262144
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.decode(tokenizer.encode("take the brass key"), skip_special_tokens=True) == "take the brass key"
