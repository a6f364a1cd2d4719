"""CPU scoring backend on llama.cpp (llama-cpp-python's low-level bindings).

Costs per `score` call are kept to the prompt and the candidates:
- the fixed prefix is decoded once, at construction, into sequence 0 of the KV cache; a call
  removes the previous prompt from sequence 0 and prefills only the new prompt's tokens;
- all candidates of a prompt are decoded together in one batch: sequence 0 (prefix + prompt)
  is shared with sequences 1..n by `llama_memory_seq_cp`, which in a unified KV cache only
  tags cells (no copy), and candidate i's tokens go on sequence i + 1.
The first token of every candidate is predicted by the last prompt token's logits; candidate
token j + 1 by the logits of candidate token j, so only those rows are requested and
log-softmaxed.

Scores are reproducible for the same call, but not across batch compositions: llama.cpp's CPU
kernels re-quantise activations per row and tile rows by decode size, so with this quantised
Gemma the same candidate scored next to other candidates (or after a prompt split differently)
moves by up to ~0.2 nats per token. That is noise of the model's numerics, not of the sharing.

A GGUF LoRA adapter (`adapter_path`, from `priorcache prior finetune`) is applied to the context
before the prefix is decoded; its file digest is appended to `model_id` (`<base id>+lora-<sha8>`),
so priors cached for the base model never answer for the tuned one.

Not thread-safe: one backend owns one llama.cpp context; use one backend per thread/actor.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
from pathlib import Path
from typing import Sequence

import llama_cpp.llama_cpp as llama
import numpy as np

from priorcache.platform.llm.backend import NORMALISATIONS, ModelFileError, ScoringBackend
from priorcache.platform.llm.llama_tokens import tokenize

_log = logging.getLogger(__name__)

# enum ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 continues the previous message.
# (llama_cpp/_logger.py's comment still shows the older numbering without debug.)
# llama.cpp warns on every load of this model (full-size SWA cache, a '</s>' token type), so
# its warnings go to INFO: loading stays quiet unless the application asks for INFO logs.
_GGML_LEVELS = {3: logging.INFO, 4: logging.ERROR}
_GGML_CONT = 5
_last_level = logging.DEBUG


@llama.llama_log_callback
def _forward_llama_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    # By default llama.cpp prints every load step to stderr; route its messages through
    # `logging` instead, so the application decides what is shown and where.
    global _last_level
    if level != _GGML_CONT:
        _last_level = _GGML_LEVELS.get(level, logging.DEBUG)
    if _log.isEnabledFor(_last_level):
        _log.log(_last_level, "llama.cpp: %s", text.decode("utf-8", errors="replace").rstrip())


def _model_id(path: Path) -> str:
    """File stem + a content digest (size, first and last MiB) that is the same on every machine."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as file:
        digest.update(file.read(1 << 20))
        file.seek(max(0, size - (1 << 20)))
        digest.update(file.read(1 << 20))
    return f"{path.stem}-{digest.hexdigest()[:12]}"


def _file_digest(path: Path) -> str:
    """sha256 of a whole file (adapters are small: ~15 MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _log_normaliser(logits: np.ndarray) -> np.ndarray:
    """log sum exp of each row of (rows, vocab) logits, in float64."""
    peak = logits.max(axis=1)
    # exp and sum in float32 over the 262k-token vocabulary: float64 would double the cost for
    # a relative error (~1e-7) far below the model's own quantisation noise.
    total = np.exp(logits - peak[:, None]).sum(axis=1, dtype=np.float32)
    return peak.astype(np.float64) + np.log(total.astype(np.float64))


def _token_logprobs(logits: np.ndarray, rows: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """log softmax(logits[rows[k]])[tokens[k]] for every k; each row is normalised once."""
    return logits[rows, tokens].astype(np.float64) - _log_normaliser(logits)[rows]


class LlamaCppBackend(ScoringBackend):
    """llama.cpp scoring of candidates after a KV-cached prefix; see the module docstring."""

    def __init__(
        self,
        model_path: str | Path,
        prefix: str,
        *,
        n_threads: int = 2,
        n_ctx: int = 2048,
        max_candidates: int = 64,
        normalisation: str = "mean",
        model_id: str | None = None,
        adapter_path: str | Path | None = None,
    ) -> None:
        self._model = self._ctx = self._batch = None  # what `close` frees, whatever fails below
        if normalisation not in NORMALISATIONS:
            raise ValueError(
                f"config key 'prior.llm.normalisation' is {normalisation!r}; "
                f"choose one of {', '.join(NORMALISATIONS)}"
            )
        if not 1 <= max_candidates < llama.llama_max_parallel_sequences():
            raise ValueError(
                f"max_candidates is {max_candidates}; llama.cpp holds at most "
                f"{llama.llama_max_parallel_sequences() - 1} candidate sequences besides the prompt"
            )
        path = Path(model_path)
        self.normalisation = normalisation
        self.prefix = prefix

        llama.llama_log_set(_forward_llama_log, ctypes.c_void_p(0))
        llama.llama_backend_init()
        model_params = llama.llama_model_default_params()
        self._model = llama.llama_model_load_from_file(str(path).encode(), model_params)
        if not self._model:
            raise ModelFileError(
                f"llama.cpp could not load the model file {path} (its errors are logged above); "
                "point config key 'prior.llm.model_path' at a GGUF model, or set it to '' for the packaged one"
            )
        self.model_id = model_id or _model_id(path)
        self._vocab = llama.llama_model_get_vocab(self._model)
        self._n_vocab = llama.llama_vocab_n_tokens(self._vocab)

        params = llama.llama_context_default_params()
        params.n_ctx = n_ctx
        # One decode is one ubatch, so "one decode for all candidates" is one graph evaluation.
        params.n_batch = min(n_ctx, 512)
        params.n_ubatch = params.n_batch
        params.n_seq_max = max_candidates + 1
        # Logit rows one decode may return. llama.cpp sizes its compute buffer by this (1 MiB
        # per row with Gemma's 262k vocabulary; n_batch rows would reserve 512 MiB), asserts it
        # is at least n_seq_max, and aborts the process on a decode that asks for more, so
        # `_candidate_groups` keeps every decode within it.
        params.n_outputs_max = 2 * params.n_seq_max
        # One KV buffer shared by all sequences: seq_cp then tags cells instead of copying
        # the prompt's KV, and every sequence may use the whole context.
        params.kv_unified = True
        # Gemma 3 interleaves sliding-window layers; a window-sized SWA cache forgets prefix
        # positions once a long prompt passes them, which breaks reusing the prefix next call.
        params.swa_full = True
        # Logits of several tokens per sequence (candidate tokens), not just the last one.
        params.n_outputs_max_per_seq = 0
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        self._ctx = llama.llama_init_from_model(self._model, params)
        if not self._ctx:
            raise RuntimeError(f"llama.cpp could not create a context with n_ctx={n_ctx} (prior.llm.n_ctx)")
        if adapter_path:
            # Before the prefix is decoded: its cached KV must come from the adapted weights too.
            self._set_lora_adapter(Path(adapter_path))
            self.model_id += f"+lora-{_file_digest(Path(adapter_path))[:8]}"
        self._n_ctx = llama.llama_n_ctx(self._ctx)
        self._n_batch = llama.llama_n_batch(self._ctx)
        self._max_candidates = max_candidates
        self._max_outputs = params.n_outputs_max
        self._memory = llama.llama_get_memory(self._ctx)
        self._batch = llama.llama_batch_init(self._n_batch, 0, 1)

        self._prefix_tokens = self._tokenize(prefix, bos=True)
        if len(self._prefix_tokens) >= self._n_ctx:
            raise ValueError(
                f"the prompt prefix has {len(self._prefix_tokens)} tokens, more than the context "
                f"(prior.llm.n_ctx = {self._n_ctx}); raise prior.llm.n_ctx or shorten the template"
            )
        self._prefill(self._prefix_tokens, start=0, want_last=False)

    # --- public API -------------------------------------------------------------------------

    def score(self, prompts: Sequence[str], candidate_lists: Sequence[Sequence[str]]) -> list[np.ndarray]:
        if len(prompts) != len(candidate_lists):
            raise ValueError(f"{len(prompts)} prompts but {len(candidate_lists)} candidate lists")
        return [self._score_one(prompt, candidates) for prompt, candidates in zip(prompts, candidate_lists)]

    def generate(self, prompt: str, max_tokens: int = 32, stop: Sequence[str] = ("\n",)) -> str:
        return self.generate_distinct(prompt, 1, max_tokens, stop)[0]

    def generate_distinct(self, prompt: str, n: int, max_tokens: int = 32, stop: Sequence[str] = ("\n",)) -> list[str]:
        prompt_tokens = self._tokenize(prompt, bos=False)
        logits = self._prefill_prompt(prompt_tokens)
        end = len(self._prefix_tokens) + len(prompt_tokens)
        firsts = np.argsort(-logits, kind="stable")[:n]
        texts = []
        for first in firsts:
            # Each branch continues the same prompt: drop the previous branch's tokens.
            llama.llama_memory_seq_rm(self._memory, 0, end, -1)
            texts.append(self._greedy_from(int(first), end, max_tokens, stop))
        return texts

    def _greedy_from(self, token: int, pos: int, max_tokens: int, stop: Sequence[str]) -> str:
        """Greedy text from `token` (placed at `pos`) on, as `generate` describes."""
        raw = b""
        for step in range(max_tokens):
            if llama.llama_vocab_is_eog(self._vocab, token):
                break
            raw += self._piece(token)
            text = raw.decode("utf-8", errors="ignore")
            cuts = [text.find(s) for s in stop if s and s in text]
            if cuts:
                return text[: min(cuts)]
            if pos >= self._n_ctx or step == max_tokens - 1:
                break
            self._fill_batch([token], [0], [pos], [True])
            self._decode()
            logits = np.ctypeslib.as_array(llama.llama_get_logits_ith(self._ctx, 0), shape=(self._n_vocab,))
            token = int(np.argmax(logits))
            pos += 1
        return raw.decode("utf-8", errors="ignore")

    def _set_lora_adapter(self, path: Path) -> None:
        """Apply a GGUF LoRA adapter (scale 1) to every decode of this context."""
        # Freed by llama.cpp together with the model.
        adapter = llama.llama_adapter_lora_init(self._model, str(path).encode())
        if not adapter:
            raise ModelFileError(
                f"llama.cpp could not load the LoRA adapter {path} (its errors are logged above); config key "
                "'prior.llm.adapter_path' must name an adapter.gguf exported for the model in 'prior.llm.model_path'"
            )
        adapters = (llama.llama_adapter_lora_p_ctypes * 1)(adapter)
        if llama.llama_set_adapters_lora(self._ctx, adapters, 1, (ctypes.c_float * 1)(1.0)) != 0:
            raise RuntimeError(f"llama.cpp could not apply the LoRA adapter {path} (prior.llm.adapter_path)")

    def close(self) -> None:
        """Free the llama.cpp context and model (also done when the backend is collected)."""
        if self._batch is not None:
            llama.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx:
            llama.llama_free(self._ctx)
            self._ctx = None
        if self._model:
            llama.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:
        self.close()

    # --- scoring ----------------------------------------------------------------------------

    def _score_one(self, prompt: str, candidates: Sequence[str]) -> np.ndarray:
        if not candidates:
            return np.zeros(0, dtype=np.float64)
        # Each candidate is tokenized on its own (no BOS) and appended to the prompt's tokens.
        # All candidates must continue the *same* prompt tokens, which are decoded once and
        # shared; tokenizing prompt + candidate jointly could merge tokens across the boundary
        # and change the prompt's tokens per candidate. Templates end the prompt at a token
        # boundary ("\n>") and start candidates with a space (" open ..."), where Gemma's
        # tokenizer gives the same tokens either way (tested).
        cand_tokens = [self._tokenize(c, bos=False) for c in candidates]
        for i, tokens in enumerate(cand_tokens):
            if not tokens:
                raise ValueError(f"candidate {i} ({candidates[i]!r}) has no tokens; it cannot be scored")
        first_logits = self._prefill_prompt(self._tokenize(prompt, bos=False))
        n_used = llama.llama_memory_seq_pos_max(self._memory, 0) + 1
        first_tokens = np.array([tokens[0] for tokens in cand_tokens])
        first = _token_logprobs(first_logits[None, :], np.zeros(len(first_tokens), dtype=int), first_tokens)

        token_logprobs: list[np.ndarray] = [np.array([lp]) for lp in first]
        for group in self._candidate_groups(cand_tokens, n_used):
            rest = self._decode_candidates([cand_tokens[i] for i in group], n_used)
            for i, logprobs in zip(group, rest):
                token_logprobs[i] = np.concatenate([token_logprobs[i], logprobs])
        reduce = np.mean if self.normalisation == "mean" else np.sum
        return np.array([reduce(lp) for lp in token_logprobs], dtype=np.float64)

    def _candidate_groups(self, cand_tokens: list[list[int]], n_used: int) -> list[list[int]]:
        """Split candidates into decodes that fit the sequences, logit rows, batch and free KV cells.

        Every decoded candidate token needs a logit row, so the row limit bounds tokens too.
        """
        budget = min(self._n_batch, self._max_outputs, self._n_ctx - n_used)
        groups: list[list[int]] = []
        size = 0
        for i, tokens in enumerate(cand_tokens):
            n = len(tokens) - 1  # the last token predicts nothing we need: never decoded
            if n == 0:
                continue
            if n > budget:
                raise ValueError(
                    f"candidate {i} has {len(tokens)} tokens but one decode holds {budget} after the "
                    f"prompt; shorten the candidate, or raise prior.llm.n_ctx (now {self._n_ctx})"
                )
            if not groups or len(groups[-1]) == self._max_candidates or size + n > budget:
                groups.append([])
                size = 0
            groups[-1].append(i)
            size += n
        return groups

    def _decode_candidates(self, cand_tokens: list[list[int]], n_used: int) -> list[np.ndarray]:
        """Log-probs of tokens 2.. of each candidate, in one decode on sequences 1..len."""
        tokens, seqs, positions, targets = [], [], [], []
        for seq, cand in enumerate(cand_tokens, start=1):
            llama.llama_memory_seq_cp(self._memory, 0, seq, -1, -1)
            body = cand[:-1]
            tokens += body
            seqs += [seq] * len(body)
            positions += range(n_used, n_used + len(body))
            targets += cand[1:]
        self._fill_batch(tokens, seqs, positions, [True] * len(tokens))
        try:
            self._decode()
            logits = np.ctypeslib.as_array(llama.llama_get_logits(self._ctx), shape=(len(tokens), self._n_vocab))
            logprobs = _token_logprobs(logits, np.arange(len(targets)), np.array(targets))
        finally:
            for seq in range(1, len(cand_tokens) + 1):
                llama.llama_memory_seq_rm(self._memory, seq, -1, -1)
        return np.split(logprobs, np.cumsum([len(c) - 1 for c in cand_tokens])[:-1])

    # --- llama.cpp plumbing -----------------------------------------------------------------

    def _prefill_prompt(self, prompt_tokens: list[int]) -> np.ndarray:
        """Replace sequence 0's prompt after the cached prefix; logits of its last token."""
        n_prefix = len(self._prefix_tokens)
        llama.llama_memory_seq_rm(self._memory, 0, n_prefix, -1)
        if n_prefix + len(prompt_tokens) >= self._n_ctx:
            raise ValueError(
                f"prefix + prompt take {n_prefix + len(prompt_tokens)} tokens, leaving no room in the "
                f"context (prior.llm.n_ctx = {self._n_ctx}); raise prior.llm.n_ctx or shorten the state text"
            )
        if not prompt_tokens:
            raise ValueError("the prompt is empty; the template's state prompt must render to some text")
        self._prefill(prompt_tokens, start=n_prefix, want_last=True)
        return np.ctypeslib.as_array(llama.llama_get_logits_ith(self._ctx, -1), shape=(self._n_vocab,)).copy()

    def _prefill(self, tokens: list[int], start: int, want_last: bool) -> None:
        for begin in range(0, len(tokens), self._n_batch):
            chunk = tokens[begin : begin + self._n_batch]
            is_last_chunk = begin + self._n_batch >= len(tokens)
            flags = [False] * len(chunk)
            flags[-1] = want_last and is_last_chunk
            self._fill_batch(chunk, [0] * len(chunk), range(start + begin, start + begin + len(chunk)), flags)
            self._decode()

    def _fill_batch(
        self, tokens: Sequence[int], seqs: Sequence[int], positions: Sequence[int], logits: Sequence[bool]
    ) -> None:
        batch = self._batch
        batch.n_tokens = len(tokens)
        for i, (token, seq, pos, want) in enumerate(zip(tokens, seqs, positions, logits)):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = want

    def _decode(self) -> None:
        status = llama.llama_decode(self._ctx, self._batch)
        if status == 1:
            raise RuntimeError(
                f"llama.cpp found no free KV cells for {self._batch.n_tokens} tokens; raise prior.llm.n_ctx "
                f"(now {self._n_ctx})"
            )
        if status != 0:
            raise RuntimeError(f"llama_decode failed with status {status}")

    def _tokenize(self, text: str, *, bos: bool) -> list[int]:
        return tokenize(self._vocab, text, bos=bos)

    def _piece(self, token: int) -> bytes:
        buffer = ctypes.create_string_buffer(64)
        n = llama.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
        if n < 0:
            buffer = ctypes.create_string_buffer(-n)
            n = llama.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
        return buffer.raw[:n]
