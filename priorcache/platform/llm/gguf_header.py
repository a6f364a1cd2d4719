"""A GGUF file's header: its scalar metadata and tensor shapes, read without the tensor data.

The `gguf` package's reader also decodes every array (a 262k-entry vocabulary takes it ~13 s);
checking what a file is (a model, a LoRA adapter, which architecture) only needs the scalars,
so arrays are skipped here, and the read takes milliseconds. Layout (GGUF v2/v3, little endian):
magic, version u32, tensor count u64, metadata count u64, the metadata (key string, value type
u32, value), then per tensor its name, n_dims u32, n_dims x u64 dims, type u32, offset u64.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

from priorcache.platform.llm.model_files import GGUF_MAGIC

# value type -> struct format of the scalar types; 8 is a string, 9 an array.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class GGUFHeader:
    """Scalar and string metadata (arrays left out) and tensor shapes in ggml order (ne0 first)."""

    metadata: dict[str, int | float | bool | str]
    tensors: dict[str, tuple[int, ...]]


def read_gguf_header(path: str | Path) -> GGUFHeader:
    """The header of a GGUF file; ValueError if it is not GGUF or is cut short."""
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:4] != GGUF_MAGIC:
            raise ValueError(f"starts with {bytes(data[:4])!r}, not {GGUF_MAGIC!r}")
        try:
            return _parse(data)
        except (struct.error, IndexError, KeyError, UnicodeDecodeError) as err:
            raise ValueError(f"its GGUF header is malformed or cut short ({err})") from err


def _parse(data: mmap.mmap) -> GGUFHeader:
    pos = 8  # magic + version
    n_tensors, n_kv = struct.unpack_from("<QQ", data, pos)
    pos += 16

    def string() -> str:
        nonlocal pos
        (size,) = struct.unpack_from("<Q", data, pos)
        text = data[pos + 8: pos + 8 + size].decode("utf-8")
        pos += 8 + size
        return text

    def value(kind: int) -> int | float | bool | str | None:
        nonlocal pos
        if kind == _STRING:
            return string()
        if kind == _ARRAY:
            item_kind, count = struct.unpack_from("<IQ", data, pos)
            pos += 12
            if item_kind in _SCALARS:  # fixed width: jump over it
                pos += count * struct.calcsize(_SCALARS[item_kind])
            else:
                for _ in range(count):
                    value(item_kind)
            return None
        fmt = _SCALARS[kind]
        (scalar,) = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return scalar

    metadata: dict[str, int | float | bool | str] = {}
    for _ in range(n_kv):
        key = string()
        (kind,) = struct.unpack_from("<I", data, pos)
        pos += 4
        item = value(kind)
        if item is not None:
            metadata[key] = item
    tensors: dict[str, tuple[int, ...]] = {}
    for _ in range(n_tensors):
        name = string()
        (n_dims,) = struct.unpack_from("<I", data, pos)
        tensors[name] = struct.unpack_from(f"<{n_dims}Q", data, pos + 4)
        pos += 4 + 8 * n_dims + 4 + 8  # dims, then type and data offset
    return GGUFHeader(metadata, tensors)
