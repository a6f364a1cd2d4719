"""benchmarks/oracle_gate.py's replay on hand-made LLM answers, with the real state embedder
(the benchmark itself plays the real tuned prior; it is run by hand, docs/cache.md)."""

import numpy as np

from priorcache.platform.embed import TextEmbedder


def test_a_neighbour_counts_only_where_its_scores_keep_the_fresh_argmax(load_benchmark):
    bench = load_benchmark("oracle_gate")
    embedder = TextEmbedder(None, n_threads=1)
    kitchen = "Your task is to: put a clean mug in the cabinet.\nYou are at the sinkbasin 1. You are carrying the mug 1."
    answers = [
        (kitchen, ("clean mug 1 with sinkbasin 1", "go to cabinet 1"), [-0.1, -2.5]),
        # near, same command on top (the neighbour never scored "look": it gets the neighbour's lowest score)
        (kitchen + " It is quiet.", ("clean mug 1 with sinkbasin 1", "go to cabinet 1", "look"), [-0.2, -2.0, -3.0]),
        # near, but the fresh prior wants another command: the oracle does not serve it
        (kitchen.replace("sinkbasin 1", "cabinet 1"), ("clean mug 1 with sinkbasin 1", "go to cabinet 1"),
         [-3.0, -0.05]),
    ]
    stream = [{"embedding": embedder.embed_one(state), "candidates": cands, "logp": np.array(logp)}
              for state, cands, logp in answers]
    pairs = bench.preserved_by_neighbour(stream)
    assert [kept for _, kept in pairs] == [True, False]
    assert all(0.8 < similarity <= 1.0 for similarity, _ in pairs)
