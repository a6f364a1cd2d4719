"""benchmarks/oracle_gate.py's replay on hand-made LLM answers, with the real state embedder
(the full 40-episode play is run by hand, docs/cache.md), and 3 real greedy steps on the real prior."""

import numpy as np
import pytest

from priorcache.envs.registry import make_text_env, resolve_env
from priorcache.platform.config import load_config
from priorcache.platform.embed import TextEmbedder


def test_a_neighbour_counts_only_where_its_scores_keep_the_fresh_argmax(load_benchmark, tmp_path):
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
    # --save then --replay gives the same stream (embeddings are recomputed, not stored)
    bench.save(tmp_path / "answers.json", [{**a, "state": text} for a, (text, _, _) in zip(stream, answers)], [], [])
    replayed, _, _ = bench.load(tmp_path / "answers.json")
    assert [(a["state"], a["candidates"]) for a in replayed] == [(text, cands) for text, cands, _ in answers]
    assert all(np.array_equal(r["logp"], a["logp"]) for r, a in zip(replayed, stream))
    pairs = bench.preserved_by_neighbour(stream)
    assert [kept for _, _, kept in pairs] == [True, False]
    assert all(0.8 < similarity <= 1.0 for similarity, _, _ in pairs)
    # the neighbour's top command leads by 2.4 nats in both: a confident neighbour can still flip
    assert [round(lead, 6) for _, lead, _ in pairs] == [2.4, 2.4]
    # perfect retrieval: answer 0 serves answer 1; nothing stored tops "go to cabinet 1", so answer 2 is asked
    assert bench.asked_with_perfect_retrieval(stream) == 2


def test_a_coarser_key_serves_its_first_answer_and_counts_the_flips(load_benchmark):
    bench = load_benchmark("oracle_gate")
    task = "Your task is to: put a mug in the cabinet.\nYou are at the sinkbasin 1. You are carrying nothing."
    commands = ("go to cabinet 1", "take mug 1 from sinkbasin 1")
    answers = [
        {"state": f"{task}\n\nYou arrive at sinkbasin 1.", "candidates": commands, "logp": np.array([-2.0, -0.1])},
        {"state": f"{task}\nYou have looked in/on: sinkbasin 1.\n\nYou arrive at sinkbasin 1.",
         "candidates": commands, "logp": np.array([-0.1, -2.0])},
    ]
    # episode 0 meets state 0 twice; episode 1 (won) meets state 1, which only the coarser key merges
    requests = [{"episode": 0, "answer": 0}, {"episode": 0, "answer": 0}, {"episode": 1, "answer": 1}]
    won = [False, True]
    exact = bench.served_by_key(answers, requests, won, bench.KEYS["state"][1], bench.gate_named("none"))
    assert exact == {"llm": 2, "served": 1, "flips": 0, "won_flipped": 0}
    by_feedback = bench.served_by_key(answers, requests, won, bench.KEYS["task-feedback"][1], bench.gate_named("none"))
    assert by_feedback == {"llm": 1, "served": 2, "flips": 1, "won_flipped": 1}
    # the relevance gate sees "sinkbasin 1", which the stored top command names, once more: the LLM answers
    gated = bench.served_by_key(answers, requests, won, bench.KEYS["task-feedback"][1], bench.gate_named("relevance"))
    assert gated == {"llm": 2, "served": 1, "flips": 0, "won_flipped": 0}
    # answer 0 leads by 1.9 nats: decisive at 0.5 nats it passes the gate (and flips here), not at 2
    decisive = bench.served_by_key(answers, requests, won, bench.KEYS["task-feedback"][1],
                                   bench.relevance_or_decisive(0.5))
    assert decisive == {"llm": 1, "served": 2, "flips": 1, "won_flipped": 1}
    assert bench.served_by_key(answers, requests, won, bench.KEYS["task-feedback"][1],
                               bench.relevance_or_decisive(2.0)) == gated
    assert bench.refused_by_lead(answers, requests, 0.5) == {"decisive": (1, 0), "close call": (0, 0)}


def test_the_task_in_the_key_keeps_close_calls_to_their_task(load_benchmark):
    bench = load_benchmark("oracle_gate")
    commands = ("go to sinkbasin 1", "go to stoveburner 1")
    room = "You are in the middle of a room.\n\nYou arrive at the room."
    answers = [{"state": f"Your task is to: {task}.\n{room}", "candidates": commands, "logp": np.array(logp)}
               for task, logp in (("clean a ladle", [-0.6, -0.8]), ("heat an egg", [-0.8, -0.6]))]
    requests = [{"episode": 0, "answer": 0}, {"episode": 1, "answer": 1}]
    # the same feedback, another task: keyed on the feedback alone, the gate serves the close call, and it flips
    assert bench.served_by_key(answers, requests, [False, True], bench.KEYS["feedback"][1],
                               bench.gate_named("relevance")) == {"llm": 1, "served": 1, "flips": 1, "won_flipped": 1}
    # the platform's key and gate (task and feedback, decisive at 0.25 nats): the LLM answers
    assert bench.served_by_key(answers, requests, [False, True], bench.KEYS["task-feedback"][1],
                               bench.relevance_or_decisive(0.25)) == {"llm": 2, "served": 0, "flips": 0, "won_flipped": 0}


def test_the_play_records_what_its_replay_reads_on_the_real_prior(load_benchmark, ray_session, capsys):
    """Real ALFWorld game, real tuned prior through a real LLM replica, 3 greedy steps."""
    bench = load_benchmark("oracle_gate")
    key, gate = bench.KEYS["task-feedback"][1], bench.gate_named("relevance")
    answers, requests, won = bench.play_greedy(range(1), 3, 1, key, gate)
    assert won == [False] and len(requests) == 3
    assert all(len(a["logp"]) == len(a["candidates"]) for a in answers)
    # played again on its own answers (--answers), it walks the same path with the same scores, asking nothing
    recorded = {(a["state"], a["candidates"]): a["logp"] for a in answers}
    capsys.readouterr()
    again = bench.play_greedy(range(1), 3, 1, key, gate, recorded)
    assert again[1:] == (requests, won) and all(np.array_equal(a["logp"], b["logp"]) for a, b in zip(answers, again[0]))
    assert f"{len(answers)} LLM answers (0 asked, the rest from --answers)" in capsys.readouterr().out
    # replayed with the key it was played with, the record asks the LLM exactly as often as the play did
    replayed = bench.served_by_key(answers, requests, won, key, gate)
    assert replayed == {"llm": len(answers), "served": 3 - len(answers), "flips": 0, "won_flipped": 0}
    # --by-game plays the eval pool's games by index, each once: episode 0 is game 0, whatever seed 0 draws
    by_game = bench.play_greedy(range(1), 1, 1, key, gate, {}, by_game=True)[0][0]["state"]
    env = make_text_env(resolve_env(load_config(bench.EXPERIMENT, ["env.alfworld.max_games=0"]).env), "eval")
    try:
        assert by_game == env.reset(options={"game_index": 0})[0]["state"] != answers[0]["state"]
    finally:
        env.close()


def test_a_new_task_and_feedback_pair_is_measured_against_the_tasks_nearest_answer(load_benchmark):
    bench = load_benchmark("oracle_gate")
    commands = ("go to fridge 1", "open fridge 1")
    task = "Your task is to: cool some pot and put it in stoveburner."
    answers = [{"state": f"{task}\n\n{feedback}", "candidates": commands, "logp": np.array(logp),
                "embedding": np.array(vector)}
               for feedback, logp, vector in (("You arrive at the room.", [-0.1, -2.0], [1.0, 0.0]),
                                              ("You arrive at fridge 1.", [-2.0, -0.1], [0.8, 0.6]),
                                              ("You arrive at fridge 1.", [-2.0, -0.1], [0.8, 0.6]))]
    other_task = {**answers[0], "state": answers[0]["state"].replace("cool some pot", "heat some egg")}
    requests = [{"episode": 0, "answer": i} for i in range(3)] + [{"episode": 1, "answer": 3}]
    # answer 1 is new feedback for its task: the task's nearest answer (0, cosine 0.8, lead 1.9) flips it;
    # answer 2 repeats answer 1's pair (the cache serves it) and the other task has no earlier answer
    pairs = bench.new_pairs_by_task_neighbour(answers + [other_task], requests)
    assert [(round(c, 6), round(lead, 6), kept) for c, lead, kept in pairs] == [(0.8, 1.9, False)]


def test_by_game_past_the_pool_fails_before_the_llm_starts(load_benchmark):
    bench = load_benchmark("oracle_gate")
    with pytest.raises(ValueError, match=r"--by-game: the eval pool has 140 games .* at most 140; got .* game 140"):
        bench.play_greedy(range(139, 141), 1, 1, bench.KEYS["state"][1], bench.gate_named("none"), by_game=True)
