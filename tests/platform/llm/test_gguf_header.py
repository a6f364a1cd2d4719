"""The fast GGUF header reader agrees with the gguf package on a file the package wrote."""

import numpy as np
import pytest

from priorcache.platform.llm.gguf_header import read_gguf_header


def test_header_matches_what_gguf_wrote(tmp_path):
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(path, "gemma3")
    writer.add_type(gguf.GGUFType.ADAPTER)
    # arrays before scalars: the reader must skip both kinds to reach the keys after them
    writer.add_array("tokenizer.ggml.tokens", ["<bos>", "a", "ünï"])
    writer.add_array("tokenizer.ggml.scores", [0.0, -1.5, -2.5])
    writer.add_float32("adapter.lora.alpha", 32.0)
    writer.add_uint32("gemma3.block_count", 18)
    writer.add_bool("some.flag", True)
    writer.add_tensor("blk.0.attn_q.weight.lora_a", np.zeros((16, 640), dtype=np.float32))
    writer.add_tensor("blk.0.attn_q.weight.lora_b", np.zeros((1024, 16), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    header = read_gguf_header(path)
    assert header.metadata == {
        "general.architecture": "gemma3", "general.type": "adapter", "adapter.lora.alpha": 32.0,
        "gemma3.block_count": 18, "some.flag": True,
    }
    assert header.tensors == {"blk.0.attn_q.weight.lora_a": (640, 16), "blk.0.attn_q.weight.lora_b": (16, 1024)}


def test_not_gguf_or_cut_short_is_a_value_error(tmp_path):
    (tmp_path / "text.gguf").write_bytes(b"hello world, not a model")
    with pytest.raises(ValueError, match="not b'GGUF'"):
        read_gguf_header(tmp_path / "text.gguf")
    (tmp_path / "short.gguf").write_bytes(b"GGUF\x03\x00\x00\x00\x01")
    with pytest.raises(ValueError, match="cut short"):
        read_gguf_header(tmp_path / "short.gguf")
