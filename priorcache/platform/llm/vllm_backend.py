"""GPU scoring backend on vLLM (`prior.llm.backend: vllm`): candidate log-likelihoods from prompt log-probs.

vLLM is not a dependency of the project (its torch and transformers pins conflict with the
lock; see cluster/requirements-vllm.txt): it is imported when a backend is built, never at
module import, and a missing vLLM raises `BackendNotInstalledError` naming the install command.

Scoring (`score`):
- Token sequences are built as `LlamaCppBackend` builds them: the prefix (with the tokenizer's
  start-of-sequence tokens), the prompt and each candidate are tokenized on their own and their
  ids concatenated, then sent to vLLM as token ids. Every candidate therefore continues the same
  prompt tokens, and its scored tokens are exactly its own tokenization: a tokenizer that would
  merge text across the prompt/candidate boundary cannot move the boundary.
- One `LLM.generate` call per `score` call carries every prompt x candidate sequence, with
  `SamplingParams(max_tokens=1, prompt_logprobs=0)`: vLLM returns log p(token | earlier tokens)
  for every prompt token, and a candidate's score is the mean (or sum) over its last
  len(candidate) tokens. vLLM batches and schedules the sequences itself.
- Prefix caching is on (`enable_prefix_caching=True`), but vLLM (0.22.1, the pin, as 0.33) does
  not *read* the prefix cache for requests that ask for prompt log-probs
  (`SamplingParams.skip_reading_prefix_cache` defaults to True for them: cached positions have
  no logits to return), so every scored sequence prefills prefix + prompt + candidate in full;
  they still write the cache, which `generate` and `generate_distinct` (no prompt log-probs)
  read. Unlike llama.cpp's shared KV, the prefix is thus recomputed per candidate, and vLLM
  computes full-vocabulary log-probs for every prompt token: docs/results/gpu.md measures what
  that costs on an H100.

Generation (`generate`, `generate_distinct`) is greedy, as `LlamaCppBackend` does it: the `n`
likeliest first tokens (top-n log-probs of the first position), then one batched greedy
continuation per first token, decoded and cut at the first stop string.

Not thread-safe: one `vllm.LLM` per backend, one backend per replica actor. With
`tensor_parallel_size` > 1 the replica must run inside a Ray placement group with that many GPU
bundles (`pool.replica_options` makes it); vLLM's Ray executor then puts one worker per bundle.
"""

from __future__ import annotations

import importlib
import logging
import sys
from types import ModuleType
from typing import Any, Sequence

import numpy as np

from priorcache.platform.llm.backend import NORMALISATIONS, BackendNotInstalledError, ScoringBackend
from priorcache.platform.llm.model_files import hf_model_dir_or_id, hf_model_id

_log = logging.getLogger(__name__)

VLLM_VERSION = "0.22.1"
"""The vLLM release this backend is written against (pinned in cluster/requirements-vllm.txt)."""

INSTALL_COMMAND = "uv pip install -r cluster/requirements-vllm.lock.txt && uv pip install --no-deps ."
"""Installs what a vLLM replica runs into the active virtual environment (run in the repository).
That must be an environment of its own, not the project's .venv (see cluster/requirements-vllm.txt)."""

DTYPES = ("auto", "float16", "bfloat16", "float32")
"""Values of `prior.llm.dtype` (vLLM's `dtype`; checked by the config)."""

_DECODE_CONTEXT = 8
"""Context tokens decoded in front of generated ones: SentencePiece-style decoders drop the
leading space of the first token of a decode, so generated text is decoded after a few prompt
tokens and the prompt's text is cut off again (vLLM's own detokenizer does the same)."""


def import_vllm() -> ModuleType:
    """The `vllm` module, or `BackendNotInstalledError` saying how to install it."""
    try:
        vllm = importlib.import_module("vllm")
    except ImportError as err:
        raise BackendNotInstalledError(
            f"config key 'prior.llm.backend' is 'vllm', but vllm is not installed for {sys.executable}. "
            "Install the pinned GPU environment into a virtual environment of its own (not the project's "
            f".venv) with `{INSTALL_COMMAND}` (docs/cluster.md, 'GPU replicas (vLLM)'; the CUDA image has it "
            "in /home/ray/vllm-venv), and point config key 'prior.llm.replica_python' at its python"
        ) from err
    version = getattr(vllm, "__version__", "unknown")
    if version != VLLM_VERSION:
        _log.warning("vllm %s is installed; this backend is written and pinned for %s", version, VLLM_VERSION)
    return vllm


def first_stop(text: str, stop: Sequence[str]) -> str:
    """`text` cut before the earliest occurrence of any non-empty `stop` string."""
    cuts = [text.find(s) for s in stop if s and s in text]
    return text[: min(cuts)] if cuts else text


class VllmBackend(ScoringBackend):
    """vLLM scoring of candidates as continuations of prefix + prompt; see the module docstring."""

    def __init__(
        self,
        model_path: str,
        prefix: str,
        *,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int = 2048,
        dtype: str = "auto",
        normalisation: str = "mean",
    ) -> None:
        if normalisation not in NORMALISATIONS:
            raise ValueError(
                f"normalisation is {normalisation!r}; choose one of {', '.join(NORMALISATIONS)} "
                "(ScoringRule(prior.llm.scoring).token_reduction)"
            )
        model = hf_model_dir_or_id(model_path)
        vllm = import_vllm()
        self._sampling_params = vllm.SamplingParams
        self.normalisation = normalisation
        self.prefix = prefix
        engine_args: dict[str, Any] = {
            "model": model,
            "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
            "max_model_len": max_model_len,
            "dtype": dtype,
            "enable_prefix_caching": True,
            "seed": 0,
        }
        if tensor_parallel_size > 1:
            # Left to itself, vLLM picks "ray" inside a placement group only after checking that
            # this process sees tensor_parallel_size GPUs, which the replica (reserving none)
            # need not; named explicitly, its Ray executor puts one worker on each GPU bundle of
            # the replica's placement group (vllm/config/parallel.py, v1/executor/ray_utils.py).
            engine_args["distributed_executor_backend"] = "ray"
        self._llm = vllm.LLM(**engine_args)
        self._tokenizer = self._llm.get_tokenizer()
        self._special_ids = frozenset(self._tokenizer.all_special_ids)
        self._max_model_len = max_model_len
        self.model_id = hf_model_id(model)
        # The tokenizer's own start of a sequence (BOS where the model has one), as vLLM would
        # tokenize a text prompt and as llama.cpp tokenizes the prefix.
        self._prefix_tokens = list(self._tokenizer.encode(prefix, add_special_tokens=True))
        if len(self._prefix_tokens) >= max_model_len:
            raise ValueError(
                f"the prompt prefix has {len(self._prefix_tokens)} tokens, more than the context "
                f"(prior.llm.n_ctx = {max_model_len}); raise prior.llm.n_ctx or shorten the template"
            )
        # temperature 0: greedy, and scores never depend on a random state. detokenize off: the
        # scores need no text; flat log-probs: one object per request instead of one per token.
        self._score_params = vllm.SamplingParams(
            max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False, flat_logprobs=True
        )

    # --- public API -------------------------------------------------------------------------

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer as vLLM serves it (`encode`, `decode`), e.g. to count tokens."""
        return self._tokenizer

    def score(self, prompts: Sequence[str], candidate_lists: Sequence[Sequence[str]]) -> list[np.ndarray]:
        if len(prompts) != len(candidate_lists):
            raise ValueError(f"{len(prompts)} prompts but {len(candidate_lists)} candidate lists")
        sequences: list[list[int]] = []
        lengths: list[int] = []
        for prompt, candidates in zip(prompts, candidate_lists):
            if not candidates:
                continue
            context = self._context_tokens(prompt)
            for i, candidate in enumerate(candidates):
                tokens = self._encode(candidate)
                if not tokens:
                    raise ValueError(f"candidate {i} ({candidate!r}) has no tokens; it cannot be scored")
                if len(context) + len(tokens) >= self._max_model_len:
                    raise ValueError(
                        f"prefix + prompt + candidate {i} take {len(context) + len(tokens)} tokens, more than "
                        f"the context (prior.llm.n_ctx = {self._max_model_len}); raise prior.llm.n_ctx or "
                        "shorten the state text"
                    )
                sequences.append(context + tokens)
                lengths.append(len(tokens))
        outputs = self._run(sequences, self._score_params)
        scores = iter([self._reduce(self._candidate_logprobs(out, seq, n))
                       for out, seq, n in zip(outputs, sequences, lengths)])
        return [np.array([next(scores) for _ in candidates], dtype=np.float64) for candidates in candidate_lists]

    def generate(self, prompt: str, max_tokens: int = 32, stop: Sequence[str] = ("\n",)) -> str:
        return self.generate_distinct(prompt, 1, max_tokens, stop)[0]

    def generate_distinct(self, prompt: str, n: int, max_tokens: int = 32, stop: Sequence[str] = ("\n",)) -> list[str]:
        if n < 1:
            raise ValueError(f"n is {n}; ask for at least one continuation")
        context = self._context_tokens(prompt)
        [head] = self._run([context], self._sampling_params(max_tokens=1, temperature=0.0, logprobs=n))
        top = head.outputs[0].logprobs[0]
        # Likeliest first, ties to the lower token id (llama.cpp's stable argsort does the same).
        firsts = [token for token, _ in sorted(top.items(), key=lambda item: (-item[1].logprob, item[0]))][:n]
        if max_tokens < 1:
            return ["" for _ in firsts]
        stops = [s for s in stop if s]
        # A special token (end of sequence or turn) ends its branch before any text.
        branches = [token for token in firsts if token not in self._special_ids]
        room = min(max_tokens - 1, self._max_model_len - len(context) - 1)
        continued: dict[int, list[int]] = {token: [] for token in branches}
        if room > 0 and branches:
            # vLLM stops each branch at a stop string inside its own output; one that straddles
            # the first token is cut below.
            params = self._sampling_params(max_tokens=room, temperature=0.0, stop=stops or None)
            outputs = self._run([context + [token] for token in branches], params)
            continued = {token: list(out.outputs[0].token_ids) for token, out in zip(branches, outputs)}
        return [first_stop(self._decode_after(context, [token] + continued[token]), stops)
                if token in continued else "" for token in firsts]

    # --- plumbing ---------------------------------------------------------------------------

    def _run(self, sequences: list[list[int]], params: Any) -> list[Any]:
        """`LLM.generate` on token-id prompts (one call, vLLM batches it), outputs in input order."""
        if not sequences:
            return []
        outputs = self._llm.generate([{"prompt_token_ids": seq} for seq in sequences], params, use_tqdm=False)
        if len(outputs) != len(sequences):
            raise RuntimeError(f"vLLM answered {len(outputs)} of {len(sequences)} requests")
        return list(outputs)

    def _candidate_logprobs(self, output: Any, sequence: list[int], n: int) -> np.ndarray:
        """log p of the last `n` tokens of `sequence` (the candidate), from its prompt log-probs."""
        logprobs = output.prompt_logprobs
        if logprobs is None or len(logprobs) != len(sequence):
            raise RuntimeError(
                f"vLLM returned {0 if logprobs is None else len(logprobs)} prompt log-probs for a sequence of "
                f"{len(sequence)} tokens"
            )
        # Position p holds {token id: Logprob} for sequence[p] given sequence[:p] (p = 0: None).
        return np.array([logprobs[p][sequence[p]].logprob for p in range(len(sequence) - n, len(sequence))])

    def _reduce(self, logprobs: np.ndarray) -> float:
        return float(np.mean(logprobs) if self.normalisation == "mean" else np.sum(logprobs))

    def _context_tokens(self, prompt: str) -> list[int]:
        """Prefix + prompt token ids, checked to leave room for a continuation."""
        prompt_tokens = self._encode(prompt)
        if not prompt_tokens:
            raise ValueError("the prompt is empty; the template's state prompt must render to some text")
        context = self._prefix_tokens + prompt_tokens
        if len(context) >= self._max_model_len:
            raise ValueError(
                f"prefix + prompt take {len(context)} tokens, leaving no room in the context "
                f"(prior.llm.n_ctx = {self._max_model_len}); raise prior.llm.n_ctx or shorten the state text"
            )
        return context

    def _encode(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False))

    def _decode_after(self, context: list[int], tokens: list[int]) -> str:
        """Text of `tokens` as it reads after `context`; see `_DECODE_CONTEXT`."""
        window = context[-_DECODE_CONTEXT:]
        before = self._tokenizer.decode(window, skip_special_tokens=True)
        text = self._tokenizer.decode(window + tokens, skip_special_tokens=True)
        if text.startswith(before):
            return text[len(before):]
        return self._tokenizer.decode(tokens, skip_special_tokens=True)
