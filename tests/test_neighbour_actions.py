"""benchmarks/neighbour_actions.py's table on a hand-made stream, with the real state embedder."""

from priorcache.platform.embed import TextEmbedder


def test_exact_repeats_and_near_neighbours_are_scored_against_the_expert(load_benchmark):
    bench = load_benchmark("neighbour_actions")
    kitchen = "Your task is to: put a clean mug in the cabinet.\nYou are at the sinkbasin 1. You are carrying the mug 1."
    steps = [
        {"state": kitchen, "candidates": ["clean mug 1 with sinkbasin 1", "go to cabinet 1"], "action": "clean mug 1 with sinkbasin 1"},
        {"state": kitchen, "candidates": ["clean mug 1 with sinkbasin 1", "go to cabinet 1"], "action": "clean mug 1 with sinkbasin 1"},
        # one word away: a near neighbour to the embedder, but the expert now wants another command
        {"state": kitchen.replace("the mug 1", "the cup 1"), "candidates": ["go to cabinet 1"], "action": "go to cabinet 1"},
        {"state": "You arrive at the garden. A gnome looks at you.", "candidates": ["look"], "action": "look"},
    ]
    rows = bench.neighbour_table(steps, TextEmbedder(None, n_threads=1), (0.8, 0.999999))
    exact, loose, strict = rows
    assert exact == "| same text and candidates | 25.0% | 1.33x | 100% | 100% |"
    # at 0.8 the near neighbour hits too: 2 of 4 states answered, one with the wrong command
    assert loose == "| cosine >= 0.8 | 50.0% | 2.00x | 50% | 50% |"
    assert strict.startswith("| cosine >= 0.999999 | 25.0% | 1.33x | 100% |")
