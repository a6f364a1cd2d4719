"""LoRA adapters as GGUF files for llama.cpp: export a peft adapter folder, import one back, check a file.

llama.cpp's layout (src/llama-adapter.cpp, convert_lora_to_gguf.py): `general.type = adapter`,
`adapter.type = lora`, `adapter.lora.alpha`, and per adapted weight `<gguf name>.lora_a` with
peft's lora_A as is (r x in) and `<gguf name>.lora_b` with lora_B (out x r); numpy's row-major
shapes read reversed as ggml's, so llama.cpp sees a: [in, r] and b: [r, out] and computes
W x + (alpha / r) * B A x -- peft's scaling without rsLoRA. Tensor names are those of the base
GGUF, found with the gguf package's name map for its architecture.

`import_lora_gguf` is the export's inverse (float32 both ways, so a round trip is exact): it
turns a shipped adapter back into a peft folder that fine-tuning can go on from
(`train.init_adapter`).

Reads and writes files only. Writing and importing need the `gguf` package (imported inside);
checking a file reads its header only (`gguf_header.py`), fast and without it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from priorcache.platform.llm.backend import ModelFileError
from priorcache.platform.llm.gguf_header import read_gguf_header

PEFT_CONFIG = "adapter_config.json"
PEFT_WEIGHTS = "adapter_model.safetensors"
_KEY = "prior.llm.adapter_path"


@dataclass(frozen=True)
class AdapterFile:
    """What an exported adapter file declares."""

    path: Path
    architecture: str
    """Architecture of the base model it adapts (llama.cpp refuses another)."""
    alpha: float
    n_weights: int
    """Adapted weight matrices (each stored as a lora_a / lora_b pair)."""


def export_lora_gguf(peft_dir: Path, base_gguf: Path, out_path: Path) -> AdapterFile:
    """Write the peft LoRA adapter in `peft_dir` (trained on `base_gguf`'s model) as a GGUF adapter."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    config = json.loads((peft_dir / PEFT_CONFIG).read_text())
    if config.get("use_rslora") or config.get("use_dora") or config.get("alpha_pattern") or config.get("rank_pattern"):
        # llama.cpp scales every pair by one alpha / rank.
        raise ValueError(f"{peft_dir}: rsLoRA, DoRA and per-module rank or alpha have no llama.cpp equivalent; "
                         "train a plain LoRA with one r and alpha")
    base = read_gguf_header(base_gguf)
    arch, n_blocks, name_map = _tensor_names(base)
    base_shapes = base.tensors  # ggml order: (in, out)

    pairs: dict[str, dict[str, np.ndarray]] = {}
    for name, array in load_file(str(peft_dir / PEFT_WEIGHTS)).items():
        # e.g. base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight
        if ".lora_A." not in name and ".lora_B." not in name:
            raise ValueError(f"{peft_dir}: {name} is not a LoRA weight; llama.cpp adapters hold only lora_A/lora_B")
        module, part = name.removeprefix("base_model.model.").rsplit(".lora_", 1)
        target = name_map.get_name(f"{module}.weight", try_suffixes=(".weight",))
        if target is None or target not in base_shapes:
            raise ValueError(f"{peft_dir}: adapted module {module} has no tensor in {base_gguf.name}")
        pairs.setdefault(target, {})[part.removesuffix(".weight")] = array.astype(np.float32)

    out_path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target, then renamed: a served adapter.gguf is never half-written.
    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    writer = gguf.GGUFWriter(tmp, arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config["lora_alpha"]))
    for target, pair in sorted(pairs.items()):
        if set(pair) != {"A", "B"}:
            raise ValueError(f"{peft_dir}: {target} has only lora_{''.join(pair)}; the adapter file is incomplete")
        lora_a, lora_b = pair["A"], pair["B"]
        n_in, n_out = base_shapes[target][:2]
        if lora_a.shape[1] != n_in or lora_b.shape[0] != n_out or lora_a.shape[0] != lora_b.shape[1]:
            raise ValueError(
                f"{peft_dir}: {target} has lora_A {lora_a.shape} and lora_B {lora_b.shape}, which do not fit "
                f"the base weight (in {n_in}, out {n_out}); was the adapter trained on {base_gguf.name}?"
            )
        writer.add_tensor(f"{target}.lora_a", lora_a)
        writer.add_tensor(f"{target}.lora_b", lora_b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, out_path)
    return read_adapter_file(out_path)


def import_lora_gguf(adapter_gguf: Path, base_gguf: Path, out_dir: Path, dropout: float = 0.0) -> Path:
    """Write the GGUF LoRA adapter `adapter_gguf` (of `base_gguf`'s model) as a peft folder; returns it.

    `dropout` is the LoRA dropout further training will use (GGUF files do not keep it)."""
    import gguf
    from peft import LoraConfig
    from safetensors.numpy import save_file

    adapter = read_adapter_file(adapter_gguf)
    arch, n_blocks, name_map = _tensor_names(read_gguf_header(base_gguf))
    if adapter.architecture != arch:
        raise ValueError(f"{adapter_gguf} adapts a {adapter.architecture} model, {base_gguf.name} is {arch}")
    # The name map goes from transformers' module names to GGUF's: invert it over the modules LoRA may adapt.
    modules = {f"model.layers.{block}.{group}.{proj}": proj for block in range(n_blocks)
               for group, projs in (("self_attn", ("q_proj", "k_proj", "v_proj", "o_proj")),
                                    ("mlp", ("gate_proj", "up_proj", "down_proj"))) for proj in projs}
    module_of = {name_map.get_name(f"{module}.weight", try_suffixes=(".weight",)): module for module in modules}

    weights, targets, ranks = {}, set(), set()
    for tensor in gguf.GGUFReader(adapter_gguf).tensors:
        target, part = tensor.name.rsplit(".lora_", 1)
        if target not in module_of:
            raise ValueError(f"{adapter_gguf}: {tensor.name} adapts no q/k/v/o/gate/up/down projection of {arch}")
        module = module_of[target]
        weights[f"base_model.model.{module}.lora_{part.upper()}.weight"] = tensor.data.astype("float32")
        targets.add(modules[module])
        ranks.add(tensor.data.shape[0] if part == "a" else tensor.data.shape[1])
    if len(ranks) != 1:
        raise ValueError(f"{adapter_gguf}: its LoRA pairs have ranks {sorted(ranks)}; peft needs one rank")
    out_dir.mkdir(parents=True, exist_ok=True)
    LoraConfig(r=ranks.pop(), lora_alpha=adapter.alpha, lora_dropout=dropout,
               target_modules=sorted(targets)).save_pretrained(str(out_dir))
    save_file(weights, str(out_dir / PEFT_WEIGHTS))
    return out_dir


def _tensor_names(base: Any) -> tuple[str, int, Any]:
    """(architecture, block count, the gguf package's transformers -> GGUF tensor-name map) of a base GGUF header."""
    import gguf

    arch = str(base.metadata["general.architecture"])
    n_blocks = int(base.metadata[f"{arch}.block_count"])
    arch_enum = {name: key for key, name in gguf.MODEL_ARCH_NAMES.items()}[arch]
    return arch, n_blocks, gguf.get_tensor_name_map(arch_enum, n_blocks)


def read_adapter_file(path: str | Path, key: str = _KEY) -> AdapterFile:
    """The header of a GGUF LoRA adapter; `ModelFileError` naming the config `key` if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(
            f"config key '{key}' is {str(path)!r}, which does not exist; give the adapter.gguf written by "
            "`priorcache prior finetune`, or leave the key empty for the base model"
        )
    try:
        header = read_gguf_header(path)
    except ValueError as err:
        raise ModelFileError(
            f"config key '{key}': {path} is not a GGUF LoRA adapter ({err}); give the adapter.gguf "
            "written by `priorcache prior finetune`"
        ) from err
    meta = header.metadata
    kinds = (meta.get("general.type"), meta.get("adapter.type"))
    if kinds != ("adapter", "lora") or "adapter.lora.alpha" not in meta:
        raise ModelFileError(
            f"config key '{key}': {path} is a GGUF of type {kinds[0]!r}/{kinds[1]!r}, not a LoRA adapter; "
            "a model file goes in 'prior.llm.model_path', an adapter.gguf from `priorcache prior finetune` here"
        )
    n_weights = sum(1 for name in header.tensors if name.endswith(".lora_a"))
    return AdapterFile(path=path, architecture=str(meta.get("general.architecture", "")),
                       alpha=float(meta["adapter.lora.alpha"]), n_weights=n_weights)

