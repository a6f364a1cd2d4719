"""The shipped MiniLM embedder, loaded offline."""

import numpy as np
import pytest

from priorcache.platform.embed import EMBEDDING_DIM, EmbedderError, TextEmbedder


@pytest.fixture(scope="module")
def embedder():
    return TextEmbedder(n_threads=1)


def test_unit_vectors_and_semantics(embedder):
    vecs = embedder.embed(["You are in a kitchen. There is a fridge.",
                           "You are in the kitchen. You see a fridge.",
                           "The stock market fell sharply today."])
    assert vecs.shape == (3, EMBEDDING_DIM)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > 0.9 > vecs[0] @ vecs[2]


def test_exact_repeats_skip_the_model(embedder):
    first = embedder.embed_one("a state seen twice")
    calls = embedder.model_calls
    again = embedder.embed_one("a state seen twice")
    assert embedder.model_calls == calls
    np.testing.assert_array_equal(first, again)


def test_bad_model_path_names_the_key(tmp_path):
    with pytest.raises(EmbedderError, match=r"prior\.embedder\.model_path"):
        TextEmbedder(tmp_path)
