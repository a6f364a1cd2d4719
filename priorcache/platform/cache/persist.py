"""Cache snapshots on disk: what lets a run warm-start from an earlier run's priors.

A snapshot is one `.npz` file of plain arrays (no pickled objects, so loading a snapshot
never runs code): embeddings, state-text hashes, guards, candidate texts, log-probs, the
per-entry thresholds, and the state texts and key hashes a keyed cache gates with (absent from
snapshots written before keyed caches existed: their entries load without them). Guards
travel with the entries, so a snapshot taken with another model, prompt version or candidate
set loads fine and simply never hits.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1


class SnapshotError(ValueError):
    """A file that is not a readable cache snapshot."""


def save_snapshot(entries: dict[str, Any], path: str | Path) -> Path:
    """Write `SemanticCache.snapshot()` output to `path` atomically; returns the path."""
    path = Path(path)
    logp = entries["logp"]
    lengths = np.array([len(v) for v in logp], dtype=np.int64)
    arrays = {
        "format_version": np.array(FORMAT_VERSION),
        "embedding": np.asarray(entries["embedding"], dtype=np.float32),
        "text_hash": np.array(entries["text_hash"], dtype=str),
        "guard": np.array(entries["guard"], dtype=str).reshape(-1, 3),
        "logp": np.concatenate(logp).astype(np.float64) if logp else np.zeros(0),
        "logp_lengths": lengths,
        "candidates": np.array([json.dumps(c) for c in entries["candidates"]], dtype=str),
        "state_text": np.array([json.dumps(t) for t in entries["state_text"]], dtype=str),
        "key_hash": np.array([json.dumps(k) for k in entries["key_hash"]], dtype=str),
        "threshold": np.asarray(entries["threshold"], dtype=np.float64),
        "uses": np.asarray(entries["uses"], dtype=np.int64),
    }
    # A unique temporary name: the cache actor's periodic snapshots and the driver's final one
    # may write the same file at once, and each must rename only its own complete file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:  # np.savez would append ".npz" to a str path
            np.savez_compressed(file, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a snapshot is no secret
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def load_snapshot(path: str | Path, key: str = "prior.cache.warm_start") -> dict[str, Any]:
    """Read a snapshot written by `save_snapshot`; errors name the config `key`."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            if int(data["format_version"]) != FORMAT_VERSION:
                raise SnapshotError(
                    f"config key {key!r}: {path} is snapshot format {int(data['format_version'])}, this "
                    f"version reads format {FORMAT_VERSION}; take a new snapshot or leave the key empty"
                )
            bounds = np.cumsum(data["logp_lengths"])[:-1]
            return {
                "embedding": data["embedding"],
                "text_hash": [str(t) for t in data["text_hash"]],
                "guard": [tuple(str(x) for x in g) for g in data["guard"]],
                "logp": np.split(data["logp"], bounds) if len(data["logp_lengths"]) else [],
                "candidates": [_candidates(c) for c in data["candidates"]],
                "state_text": [json.loads(str(t)) for t in data["state_text"]] if "state_text" in data else None,
                "key_hash": [json.loads(str(k)) for k in data["key_hash"]] if "key_hash" in data else None,
                "threshold": data["threshold"],
                "uses": data["uses"],
            }
    except (OSError, KeyError, ValueError) as err:
        if isinstance(err, SnapshotError):
            raise
        raise SnapshotError(
            f"config key {key!r}: {path} is not a cache snapshot ({err}); give the cache_snapshot.npz "
            "of an earlier run, or leave the key empty"
        ) from err


def _candidates(text: str) -> tuple[str, ...] | None:
    value = json.loads(str(text))
    return None if value is None else tuple(value)
