"""llama.cpp's tokenizer of a GGUF model, without the weights.

Fine-tuning must see exactly the token ids the llama.cpp backend scores, so it tokenizes with
llama.cpp itself (a vocabulary-only load takes well under a second) instead of a tokenizer
rebuilt by transformers from the same file, whose ids are not guaranteed to agree.
"""

from __future__ import annotations

from pathlib import Path

import llama_cpp.llama_cpp as llama

from priorcache.platform.llm.backend import ModelFileError


def tokenize(vocab: llama.llama_vocab_p, text: str, *, bos: bool) -> list[int]:
    """Token ids of `text` in a llama.cpp vocabulary, BOS first when `bos`; no special-token parsing.

    The one tokenization both the scoring backend and fine-tuning use."""
    data = text.encode("utf-8")
    # A token covers at least one byte, plus room for BOS/EOS.
    buffer = (llama.llama_token * (len(data) + 2))()
    n = llama.llama_tokenize(vocab, data, len(data), buffer, len(buffer), bos, False)
    if n < 0:
        raise RuntimeError(f"llama.cpp could not tokenize {text[:80]!r} (needed {-n} tokens)")
    return list(buffer[:n])


class LlamaTokenizer:
    """`tokenize(text, bos=...)` with the vocabulary of one GGUF model, without its weights."""

    def __init__(self, model_path: str | Path) -> None:
        self._model = None  # what `close` frees, whatever fails below
        llama.llama_backend_init()
        params = llama.llama_model_default_params()
        params.vocab_only = True
        self._model = llama.llama_model_load_from_file(str(model_path).encode(), params)
        if not self._model:
            raise ModelFileError(f"llama.cpp could not read the vocabulary of {model_path}")
        self._vocab = llama.llama_model_get_vocab(self._model)

    def tokenize(self, text: str, *, bos: bool) -> list[int]:
        """Token ids of `text`, with the model's BOS first when `bos`; no special-token parsing."""
        return tokenize(self._vocab, text, bos=bos)

    def close(self) -> None:
        """Free the vocabulary (also done when the tokenizer is collected)."""
        if self._model:
            llama.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:
        self.close()
