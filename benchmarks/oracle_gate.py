"""How much could a cache save on ALFWorld without costing a greedy agent its wins? Bounds and gates.

What it shows: a greedy agent (argmax of the prior) keeps its path, and so its success, as long
as every prior it is served has the same argmax as the LLM's fresh prior. This plays the tuned
ALFWorld prior greedily through an exact-match cache (which serves exactly what the LLM would
answer), keeps every LLM answer (`--save F` writes them; `--replay F` analyses a saved file
without the LLM), and replays the answers in order three ways:

1. Oracle gate: a state is served from its nearest stored neighbour (cosine of the platform's
   state embeddings, the neighbour's scores re-expressed over this state's commands by the
   cache's own candidate remapping, `cache.core.remap`) only where that keeps the fresh argmax.
   No real gate knows this, so per cosine floor the saving is an upper bound for any
   nearest-neighbour semantic cache on this embedding that keeps the greedy agent's success
   (optimistic: served states still count as stored neighbours for later ones). Its last row
   lets any stored answer serve (perfect retrieval): about the ceiling for any cache that
   serves stored answers, whatever its embedding or gate.
2. Confidence gate, a gate a cache could run: serve the nearest neighbour (cosine >= 0.90) when
   its top command leads its second by at least a margin; how many of those keep the argmax.
3. Coarser exact keys: an exact cache keyed on part of the state text (the task, the last
   feedback, the place, ...) with the candidate set; LLM answers, argmax flips, and the won
   episodes with a flip (whose path would change), each with and without a relevance gate
   (the platform's, `cache/relevance.py`: an answer stored under the key serves a state unless
   the two texts differ in something its top command names; `relevance-or-decisive` also lets
   through answers whose top command leads by `--decisive-margin` nats, 0.25 by default, with
   the refusals split by that lead and a replay per margin). `--key NAME [--gate GATE]` plays
   the greedy agent through such a cache for real and prints what it won. The platform's keyed
   cache (`prior.cache.mode=keyed`) is `--key task-feedback --gate relevance-or-decisive`.
   Its LLM answers that are the first of their task-and-feedback pair no gate can serve; the
   last table asks whether the nearest earlier answer of the same task would have kept their
   argmax.

A real play re-asks the LLM every state a recorded play already met; `--answers F ...` (files
written by `--save`) answers those from the record instead: llama.cpp at one thread count gives
the same scores to the last digit (checked on 12 recorded states), so the play is the same and
takes minutes instead of half an hour. Only states off the recorded paths reach the LLM.

Episodes are reset seeds; a seed draws its game from the eval pool of 140 games, so a range of
40 seeds plays about 35 games and two ranges share games. `--by-game` plays the pool's games by
index instead, each once: the regime where states rarely repeat.

How to run:  .venv/bin/python benchmarks/oracle_gate.py [--episodes 40] [--first-seed 0] [--by-game] [--max-steps 50]
                 [--threads 2] [--save F | --replay F] [--answers F [F ...]]
                 [--key state|progress|place|task-feedback|feedback]
                 [--gate none|relevance|relevance-or-decisive|relevance-but-feedback] [--decisive-margin M]

Results to expect (2026-11-29, 20 min on 2 cores; `--replay` 1 min; with `--answers` 5-10 min):
12/40 won, 1,563 requests, 586 LLM answers (exact matching: 2.67x); the nearest neighbour keeps
the fresh argmax for about a third of the states, so the bound is 3.95x with no similarity floor
and 3.50x / 3.29x / 3.10x at cosine 0.90 / 0.95 / 0.98; neighbours that lead by >= 1 nat keep
it for under half; perfect retrieval's loose ceiling 16x. Played for real, 40 episodes per
seed range (exact matching / `--key feedback --gate relevance`, the platform's keyed cache
until 2026-11-29 / `--key task-feedback --gate relevance-or-decisive`, the platform's now):
seeds 0-39 12 won at 2.67x / 12 at 3.33x / 12 at 3.35x; 40-79 7 at 3.24x / 8 at 3.57x / 7 at
4.28x; 80-119 10 at 3.27x / 10 at 3.74x / 10 at 4.01x; 120-159 9 at 3.24x / 7 at 3.81x / 9 at
3.93x; held out, 160-199 12 at 2.85x / 12 at 3.07x / 12 at 3.31x and 200-239 10 at 2.83x / 10 at
3.17x / 10 at 3.51x. `--by-game --episodes 140` (each eval game once): 32/140 won by both,
exact matching 2.70x, the platform's keyed cache 3.32x; nearly every hit of either is within an
episode. More keys and gates, and the older rules' runs: docs/cache.md ("Gates a cache could
run, and coarser keys", "Decisive answers", "Close calls keep to their task", "Seeds repeat
games; each game once").
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Callable, Hashable, Iterator, Sequence

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from priorcache.envs.alfworld_env import AlfworldEnv  # noqa: E402
from priorcache.envs.registry import make_text_env, resolve_env  # noqa: E402
from priorcache.experiment import init_ray  # noqa: E402
from priorcache.platform.cache.core import remap  # noqa: E402
from priorcache.platform.cache.relevance import decisive, lead, untouched, words  # noqa: E402
from priorcache.platform.config import load_config  # noqa: E402
from priorcache.platform.embed import TextEmbedder  # noqa: E402
from priorcache.platform.prior_client import PriorClient  # noqa: E402

DELTAS = (0.0, 0.90, 0.95, 0.98)
DECISIVE_MARGIN = 0.25
"""`relevance-or-decisive`: a stored answer leading by this many nats serves despite the gate (the
platform's default `prior.cache.decisive_margin`; `--decisive-margin` plays another)."""
EXPERIMENT = "experiments/alfworld_ppo_prior.yaml"
ADAPTER = "priorcache/platform/llm/adapters/alfworld-lora.gguf"
Gate = Callable[[str, str, str, np.ndarray], bool]
"""(stored state text, fresh state text, the stored answer's top command, its log-probs over the
fresh state's commands) -> may it serve."""


def play_greedy(seeds: Sequence[int], max_steps: int, threads: int, key: Callable[[dict], Hashable], gate: Gate,
                recorded: dict[tuple[str, tuple[str, ...]], np.ndarray] | None = None, by_game: bool = False
                ) -> tuple[list[dict], list[dict], list[bool]]:
    """Greedy episodes, one per env seed (`by_game`: per game index of the eval pool), through an
    exact cache keyed on `key({"state", "candidates"})`: (the LLM's answers in order, every
    request in order as {"episode", "answer"} with the index of the answer that serves it, won
    per episode). A state is served the scores of the latest answer under its key that `gate`
    lets serve it (`serving_entry`); otherwise the LLM is asked, or `recorded` answers for it
    where it holds the state: the same scores, as llama.cpp at one thread count is deterministic
    (`--answers`). Game indices past the pool raise ValueError before the LLM starts."""
    cfg = load_config(EXPERIMENT, [
        f"env.max_steps={max_steps}", "env.alfworld.max_games=0", f"prior.llm.adapter_path={ADAPTER}",
        "prior.cache.mode=off", f"prior.llm.n_threads={threads}",
    ])
    env = make_text_env(resolve_env(cfg.env), "eval")
    answers: list[dict] = []
    requests: list[dict] = []
    stored: dict[Hashable, list[int]] = {}
    won: list[bool] = []
    asked = 0
    try:
        games = len(env.unwrapped.game_files)
        if by_game and max(seeds, default=0) >= games:
            raise ValueError(f"--by-game: the eval pool has {games} games (indices 0..{games - 1}), so --first-seed "
                             f"plus --episodes must be at most {games}; got episodes up to game {max(seeds)}")
        init_ray(cfg.ray)
        client = PriorClient(cfg.prior)
        for episode, seed in enumerate(seeds):
            obs, _ = env.reset(options={"game_index": seed}) if by_game else env.reset(seed=seed)
            done = False
            while not done:
                state = {"state": obs["state"], "candidates": tuple(obs["candidates"])}
                entries = stored.setdefault(key(state), [])
                found = serving_entry(entries, state, answers, gate)
                if found is None:
                    entries.append(len(answers))
                    logp = (recorded or {}).get((state["state"], state["candidates"]))
                    if logp is None:
                        logp = client.request(state["state"], state["candidates"]).logp
                        asked += 1
                    answers.append({**state, "logp": logp})
                    found = len(answers) - 1, logp
                answer, logp = found
                requests.append({"episode": episode, "answer": answer})
                obs, _, terminated, truncated, _ = env.step(int(np.argmax(logp)))
                done = terminated or truncated
            won.append(bool(terminated))
            print(f"episode {episode + 1}/{len(seeds)} ({'game' if by_game else 'seed'} {seed}): "
                  f"{'won' if terminated else 'lost'}, {len(requests)} requests, {len(answers)} LLM answers"
                  + (f" ({asked} asked, the rest from --answers)" if recorded else ""), flush=True)
    finally:
        env.close()
    return answers, requests, won


def preserved_by_neighbour(answers: list[dict]) -> list[tuple[float, float, bool]]:
    """Per LLM answer after the first: (cosine to its nearest earlier answer, the margin in nats
    between the top two of that neighbour's scores over this state's commands, whether their
    argmax is the fresh one)."""
    embeddings = np.stack([a["embedding"] for a in answers])
    similarity = embeddings @ embeddings.T
    out = []
    for i in range(1, len(answers)):
        j = int(np.argmax(similarity[i, :i]))
        remapped, _ = remap(answers[j]["logp"], answers[j]["candidates"], answers[i]["candidates"])
        out.append((float(similarity[i, j]), lead(remapped),
                    int(np.argmax(remapped)) == int(np.argmax(answers[i]["logp"]))))
    return out


def asked_with_perfect_retrieval(answers: list[dict]) -> int:
    """LLM answers left if each state were served by any stored answer whose scores, remapped over
    its commands, keep its fresh argmax (stored: the states none could serve). About the ceiling
    for any cache that serves stored answers, whatever its embedding or gate (greedy: serving
    whenever it can, it need not find the fewest)."""
    stored: list[dict] = []
    for answer in answers:
        if not any(_keeps_argmax(earlier, answer) for earlier in stored):
            stored.append(answer)
    return len(stored)


def _keeps_argmax(stored: dict, fresh: dict) -> bool:
    """Whether `stored`'s scores, remapped over `fresh`'s commands, put the fresh top command first."""
    remapped, _ = remap(stored["logp"], stored["candidates"], fresh["candidates"])
    return int(np.argmax(remapped)) == int(np.argmax(fresh["logp"]))


def _replayed(answers: list[dict], requests: list[dict], key: Callable[[dict], Hashable], gate: Gate
              ) -> Iterator[tuple[dict, dict, list[int], tuple[int, np.ndarray] | None]]:
    """Replay the requests through an exact cache keyed on `key(answer)`, served as `play_greedy`
    serves (`serving_entry` with `gate`): per request (the request, its fresh answer, the entries
    stored under its key before it, the serving entry or None where the LLM answers)."""
    stored: dict[Hashable, list[int]] = {}
    for request in requests:
        fresh = answers[request["answer"]]
        entries = stored.setdefault(key(fresh), [])
        found = serving_entry(entries, fresh, answers, gate)
        yield request, fresh, list(entries), found
        if found is None:
            entries.append(request["answer"])


def served_by_key(answers: list[dict], requests: list[dict], won: list[bool], key: Callable[[dict], Hashable],
                  gate: Gate) -> dict[str, int]:
    """Replay the requests through an exact cache keyed on `key(answer)` instead of the whole
    state (`_replayed`). Counts LLM answers, served requests, argmax flips and the won episodes
    with a flip."""
    llm = served = flips = 0
    flipped: set[int] = set()
    for request, fresh, _, found in _replayed(answers, requests, key, gate):
        if found is None:
            llm += 1
            continue
        served += 1
        if int(np.argmax(found[1])) != int(np.argmax(fresh["logp"])):
            flips += 1
            flipped.add(request["episode"])
    return {"llm": llm, "served": served, "flips": flips, "won_flipped": sum(won[e] for e in flipped)}


def refused_by_lead(answers: list[dict], requests: list[dict], margin: float) -> dict[str, tuple[int, int]]:
    """The answers the strict relevance gate refuses under the last-feedback key (the latest entry
    under the key, where there is one), split by whether their top command leads by `margin`
    nats: {"decisive" | "close call": (refused, of them argmax kept)}."""
    counts = {"decisive": [0, 0], "close call": [0, 0]}
    for _, fresh, entries, found in _replayed(answers, requests, KEYS["feedback"][1], gate_named("relevance")):
        if found is not None or not entries:
            continue
        latest = answers[entries[-1]]
        logp, _ = remap(latest["logp"], latest["candidates"], fresh["candidates"])
        count = counts["decisive" if decisive(logp, margin) else "close call"]
        count[0] += 1
        count[1] += int(np.argmax(logp)) == int(np.argmax(fresh["logp"]))
    return {group: (refused, kept) for group, (refused, kept) in counts.items()}


def new_pairs_by_task_neighbour(answers: list[dict], requests: list[dict]) -> list[tuple[float, float, bool]]:
    """The platform's keyed cache's LLM answers that are the first of their task-and-feedback pair
    (no gate could serve them): per such answer with an earlier LLM answer of the same task,
    (cosine to the nearest of those, the lead in nats of its scores remapped over this state's
    commands, whether their argmax is the fresh one)."""
    key, gate = KEYS["task-feedback"][1], gate_named("relevance-or-decisive")
    asked: dict[str, list[int]] = {}
    out = []
    for request, fresh, entries, found in _replayed(answers, requests, key, gate):
        if found is not None:
            continue
        same_task = asked.setdefault(_sections(fresh)[0], [])
        if not entries and same_task:
            similarity = np.stack([answers[j]["embedding"] for j in same_task]) @ fresh["embedding"]
            nearest = answers[same_task[int(np.argmax(similarity))]]
            logp, _ = remap(nearest["logp"], nearest["candidates"], fresh["candidates"])
            out.append((float(similarity.max()), lead(logp), int(np.argmax(logp)) == int(np.argmax(fresh["logp"]))))
        same_task.append(request["answer"])
    return out


def serving_entry(entries: list[int], state: dict, answers: list[dict], gate: Gate) -> tuple[int, np.ndarray] | None:
    """The latest of `entries` (indices of answers stored under `state`'s key) that `gate` lets
    serve `state`, with its scores remapped over `state`'s commands; None when the LLM must answer."""
    for index in reversed(entries):
        logp, _ = remap(answers[index]["logp"], answers[index]["candidates"], state["candidates"])
        if gate(answers[index]["state"], state["state"], state["candidates"][int(np.argmax(logp))], logp):
            return index, logp
    return None


def untouched_but_feedback(stored_state: str, fresh_state: str, command: str, logp: np.ndarray) -> bool:
    """The relevance gate on only those words of `command` the last feedback does not name: the
    key `feedback` matches the feedback exactly, so it shows them the same way in both states
    (a variant measured and not shipped: it lost wins, docs/cache.md)."""
    feedback = words(_sections({"state": fresh_state})[2])
    return untouched(stored_state, fresh_state, " ".join(w for w in words(command).elements() if w not in feedback))


def relevance_or_decisive(margin: float) -> Gate:
    """The platform's keyed gate with `prior.cache.decisive_margin=margin`: an answer serves when
    it leads by `margin` nats or the texts do not differ in what its top command names."""
    return lambda stored_state, fresh_state, command, logp: (
        decisive(logp, margin) or untouched(stored_state, fresh_state, command))


GATES: dict[str, Callable[[float], Gate]] = {
    "none": lambda margin: lambda stored_state, fresh_state, command, logp: True,
    "relevance": lambda margin: lambda stored_state, fresh_state, command, logp: untouched(
        stored_state, fresh_state, command),
    "relevance-or-decisive": relevance_or_decisive,
    "relevance-but-feedback": lambda margin: untouched_but_feedback,
}
"""How a keyed cache decides whether an answer stored under the key may serve a state, per name a
gate given the decisive margin (only `relevance-or-decisive` has one)."""


def gate_named(name: str, margin: float = DECISIVE_MARGIN) -> Gate:
    """The gate `--gate name` plays, with `margin` where it takes one."""
    return GATES[name](margin)


def _sections(answer: dict) -> tuple[str, str, str]:
    """(task line, progress lines, last feedback) of an ALFWorld state text (alfworld_env.py)."""
    head, _, feedback = answer["state"].partition("\n\n")
    task, _, progress = head.partition("\n")
    return task, progress, feedback


KEYS: dict[str, tuple[str, Callable[[dict], Hashable]]] = {
    "state": ("the whole state (exact matching)", lambda a: (a["state"], a["candidates"])),
    "progress": ("the state without its last feedback", lambda a: (_sections(a)[:2], a["candidates"])),
    "place": ("task, place and what is carried",
              lambda a: (_sections(a)[0], _sections(a)[1].split("\n")[0], a["candidates"])),
    "task-feedback": ("task and last feedback", lambda a: (AlfworldEnv.cache_key(a), a["candidates"])),
    "feedback": ("last feedback alone", lambda a: (_sections(a)[2], a["candidates"])),
}
"""Exact-match keys: the whole state, and parts of it, each with the candidate set (the
candidates still tell the place and the hands apart). `task-feedback` is the platform's key, the
env's own `cache_key`, so the script measures what `prior.cache.mode=keyed` matches on."""
MARGINS = (0.0, 0.5, 1.0, 2.0)
"""Confidence gates: serve the nearest neighbour (cosine >= 0.90) when its top command leads by this many nats."""
DECISIVE_MARGINS = (float("inf"), 1.0, 0.5, 0.25, 0.1, 0.0)
"""Decisive margins replayed for the keyed cache (keyed on task and last feedback, as the platform, and on the
last feedback alone); inf is the strict gate."""


def load(path: str | Path) -> tuple[list[dict], list[dict], list[bool]]:
    """Answers, requests and outcomes written by `--save`."""
    saved = json.loads(Path(path).read_text())
    answers = [{**a, "candidates": tuple(a["candidates"]), "logp": np.asarray(a["logp"])} for a in saved["answers"]]
    return answers, saved["requests"], saved["won"]


def save(path: str | Path, answers: list[dict], requests: list[dict], won: list[bool]) -> None:
    """Write what `load` reads back."""
    Path(path).write_text(json.dumps({
        "answers": [{"state": a["state"], "candidates": a["candidates"], "logp": a["logp"].tolist()} for a in answers],
        "requests": requests, "won": won}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--first-seed", type=int, default=0, help="env seed of the first episode (--by-game: its game index)")
    parser.add_argument("--by-game", action="store_true",
                        help="episodes play the eval pool's games by index from --first-seed, each once, instead of "
                             "reset seeds (a seed draws its game from the pool, so seed ranges repeat games)")
    parser.add_argument("--max-steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads of the LLM replica")
    parser.add_argument("--save", default="", help="write the answers, requests and outcomes to this JSON file")
    parser.add_argument("--replay", default="", help="analyse a file written by --save instead of playing")
    parser.add_argument("--answers", nargs="+", default=[],
                        help="files written by --save: their answers stand in for the LLM's where a state repeats")
    parser.add_argument("--decisive-margin", type=float, default=DECISIVE_MARGIN,
                        help="nats by which a stored answer's top command must lead to pass `--gate relevance-or-decisive`")
    parser.add_argument("--key", choices=sorted(KEYS), default="state",
                        help="play through an exact cache on this key (not `state`: prints the outcome only)")
    parser.add_argument("--gate", choices=sorted(GATES), default="none",
                        help="which answer stored under the key may serve a state "
                             "(not `none`: prints the outcome only)")
    args = parser.parse_args()
    exact = (args.key, args.gate) == ("state", "none")
    if not exact and (args.save or args.replay):
        parser.error("--save and --replay record and analyse exact matching (--key state --gate none): other "
                     "keys and gates serve states other answers, so their records cannot be replayed")
    if args.replay:
        answers, request_log, won = load(args.replay)
    else:
        recorded = {(a["state"], a["candidates"]): a["logp"] for path in args.answers for a in load(path)[0]}
        seeds = range(args.first_seed, args.first_seed + args.episodes)
        answers, request_log, won = play_greedy(seeds, args.max_steps, args.threads, KEYS[args.key][1],
                                                gate_named(args.gate, args.decisive_margin), recorded, args.by_game)
    if args.save:
        save(args.save, answers, request_log, won)
    if not exact:
        print(f"\ngreedy tuned prior, exact cache keyed on {KEYS[args.key][0]}, gate {args.gate}: "
              f"{sum(won)}/{len(won)} won, "
              f"{len(request_log)} prior requests, {len(answers)} LLM answers ({len(request_log) / len(answers):.2f}x)")
        return
    embedder = TextEmbedder(None, n_threads=args.threads)
    for answer in answers:
        answer["embedding"] = embedder.embed_one(answer["state"])
    pairs = preserved_by_neighbour(answers)
    requests, misses = len(request_log), len(answers)
    print(f"\ngreedy tuned prior, exact cache: {sum(won)}/{len(won)} won, {requests} prior requests, "
          f"{misses} LLM answers ({requests / misses:.2f}x)\n")
    print("| served from the nearest neighbour when | neighbour this near | of them argmax kept "
          "| LLM answers left | oracle-gated saving (bound) |")
    print("|---|---|---|---|---|")
    for delta in DELTAS:
        near = [kept for similarity, _, kept in pairs if similarity >= delta]
        left = misses - sum(near)
        print(f"| cosine >= {delta:.2f} and argmax kept | {len(near)} | {sum(near)} "
              f"({np.mean(near) if near else float('nan'):.0%}) | {left} | {requests / left:.2f}x |")
    left = asked_with_perfect_retrieval(answers)
    print(f"| any stored answer keeps the argmax (perfect retrieval) | – | {misses - left} | {left} "
          f"| {requests / left:.2f}x |")
    print("\n| confidence gate: served from the nearest neighbour (cosine >= 0.90) when its lead is "
          "| served | of them argmax kept | LLM answers left | saving, flips and all |")
    print("|---|---|---|---|---|")
    for margin in MARGINS:
        gated = [kept for similarity, lead, kept in pairs if similarity >= 0.90 and lead >= margin]
        print(f"| >= {margin:.1f} nats | {len(gated)} | {sum(gated)} ({np.mean(gated) if gated else float('nan'):.0%}) "
              f"| {misses - len(gated)} | {requests / (misses - len(gated)):.2f}x |")
    print(f"\n| exact cache keyed on | gate | LLM answers | saving | served | argmax flips "
          f"| won episodes with a flip (of {sum(won)}) |")
    print("|---|---|---|---|---|---|---|")
    for name, key in KEYS.values():
        for gate_name in GATES:
            row = served_by_key(answers, request_log, won, key, gate_named(gate_name))
            print(f"| {name} | {gate_name} | {row['llm']} | {requests / row['llm']:.2f}x | {row['served']} "
                  f"| {row['flips']} ({row['flips'] / row['served']:.0%}) | {row['won_flipped']} |")
    print("\n| answers the strict gate refuses (last feedback key) | refused | of them argmax kept |\n|---|---|---|")
    for group, (refused, kept) in refused_by_lead(answers, request_log, DECISIVE_MARGIN).items():
        print(f"| {group} (lead {'>=' if group == 'decisive' else '<'} {DECISIVE_MARGIN} nats) | {refused} | {kept} |")
    print(f"\n| keyed cache, decisive margin | keyed on | LLM answers | saving | argmax flips "
          f"| won episodes with a flip (of {sum(won)}) |\n|---|---|---|---|---|---|")
    for margin in DECISIVE_MARGINS:
        for key in ("task-feedback", "feedback"):
            row = served_by_key(answers, request_log, won, KEYS[key][1], relevance_or_decisive(margin))
            print(f"| {margin} nats | {KEYS[key][0]} | {row['llm']} | {requests / row['llm']:.2f}x | {row['flips']} "
                  f"| {row['won_flipped']} |")
    pairs = new_pairs_by_task_neighbour(answers, request_log)
    print(f"\n| keyed cache's first answers of a task-and-feedback pair ({len(pairs)} with an earlier answer of the "
          "task): served from the task's nearest answer when | served | of them argmax kept |\n|---|---|---|")
    for delta in DELTAS[1:]:
        for margin in MARGINS[:3]:
            served = [kept for similarity, lead_, kept in pairs if similarity >= delta and lead_ >= margin]
            print(f"| cosine >= {delta:.2f}, lead >= {margin:.1f} nats | {len(served)} "
                  f"| {sum(served)} ({np.mean(served) if served else float('nan'):.0%}) |")


if __name__ == "__main__":
    main()
