"""`priorcache offline bench BENCH`: CQL vs CQL-Prior on the same datasets and seeds.

A bench YAML (`BenchConfig`) names a base experiment, overrides for every run, the dataset
qualities, the algorithms, the seeds and a fixed return. The bench records each quality's
dataset once (skipped when its folder is complete, unless `--fresh-datasets`), then trains
every algorithm with every seed on it through `priorcache run`'s harness (`run_experiment`: an
MLflow run, `summary.json`, held-out evaluation), all in one Ray session sharing one cache.

Per run it keeps the online evaluation of every iteration (`offline.eval_interval`) and the
learner's cumulative update time; "time to return R" is that time at the first evaluation
whose mean return reaches R (none if it never does). It writes `<output>.json` (every run,
every curve) and `<output>.md` (means over seeds, CQL-Prior relative to CQL, the paper's claims
beside). Continuous control (HalfCheetah) is a row stating it was not measured.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from priorcache.offline.behaviour import QUALITIES
from priorcache.offline.dataset import CARD_JSON, DatasetCard, dataset_dir, load_card, run_dataset
from priorcache.platform.config import ConfigError, load_config, load_yaml_as

PAPER_PERFORMANCE = "+14–29%"
PAPER_TIME = "−38–40%"


@dataclass
class BenchConfig:
    """An offline bench: which datasets, algorithms and seeds, and where the table goes."""

    name: str = "offline"
    """Bench name (prefix of its runs' names)."""
    experiment: str = "experiments/textworld_cql_prior.yaml"
    """Base experiment YAML every run starts from."""
    overrides: list[str] = field(default_factory=list)
    """`key=value` overrides for every run and every recording (e.g. train.iterations=10)."""
    qualities: list[str] = field(default_factory=lambda: list(QUALITIES))
    """Dataset qualities (random, medium, expert), each recorded once and shared by every run."""
    algorithms: list[str] = field(default_factory=lambda: ["cql", "cql_prior"])
    """Algorithms compared; the first is the baseline the others are compared with."""
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    """Training seeds; every algorithm runs every seed on every dataset."""
    target_return: float = 3.0
    """The fixed return whose first reach times training (time to return)."""
    output: str = "docs/results/offline"
    """Path of the results without suffix: `.md` and `.json` are written."""


def load_bench(path: str | Path) -> BenchConfig:
    """A bench YAML merged onto `BenchConfig`; ConfigError naming the key otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"bench file {path} does not exist: pass a YAML under experiments/offline/")
    bench = load_yaml_as(BenchConfig, path, "bench")
    for key, values, choices in (("qualities", bench.qualities, QUALITIES),
                                 ("algorithms", bench.algorithms, ("cql", "cql_prior"))):
        if not values or any(v not in choices for v in values):
            raise ConfigError(f"bench key {key!r} is {values}; choose among {', '.join(choices)}")
    if not bench.seeds:
        raise ConfigError("bench key 'seeds' is empty; give at least one seed")
    load_config(bench.experiment, bench.overrides)  # a bad experiment or override fails here, before Ray
    return bench


def time_to_return(curve: list[dict[str, float]], target: float) -> dict[str, float] | None:
    """The first point of `curve` whose evaluation return reaches `target` (None if none does)."""
    for point in curve:
        if point["return"] == point["return"] and point["return"] >= target:  # NaN: no evaluation then
            return point
    return None


def run_bench(bench: BenchConfig, fresh_datasets: bool = False) -> Path:
    """Record the datasets, train every (quality, algorithm, seed), write the tables; returns the .md."""
    from priorcache.experiment import run_experiment

    runs: list[dict[str, Any]] = []
    cards = {}
    for quality in bench.qualities:
        overrides = [*bench.overrides, f"offline.quality={quality}"]
        folder = dataset_dir(load_config(bench.experiment, overrides))
        if fresh_datasets or not (folder / CARD_JSON).is_file():
            run_dataset(bench.experiment, overrides)
        cards[quality] = load_card(folder)
        for algorithm in bench.algorithms:
            for seed in bench.seeds:
                cfg = load_config(bench.experiment, [
                    *overrides, f"offline.dataset={folder}", f"algorithm.name={algorithm}", f"seed={seed}",
                    f"name={bench.name}-{quality}-{algorithm}-s{seed}"])
                curve: list[dict[str, float]] = []
                outcome = run_experiment(cfg, on_iteration=lambda i, m: curve.append(
                    {"iteration": i, "train_time_s": m["train_time_s"], "wall_time_s": m["wall_time_s"],
                     "return": m["episode_return_mean"], "success": m["success_rate"]}))
                s = outcome.summary
                runs.append({
                    "quality": quality, "algorithm": algorithm, "seed": seed, "run_dir": str(outcome.run_dir),
                    "mlflow_run_id": outcome.mlflow_run_id, "return": s["episode_return_mean"],
                    "success": s["success_rate"], "episodes": s["episodes"], "train_time_s": s["train_time_s"],
                    # The pool's queries since the Ray session began (all runs and recordings so far).
                    "wall_time_s": s["wall_time_s"], "session_llm_queries": s["llm_queries"],
                    "prior_requests": s["prior_requests"], "to_target": time_to_return(curve, bench.target_return),
                    "curve": curve,
                })
                _write(bench, cards, runs)  # after every run: an interrupted bench keeps what it measured
    return _write(bench, cards, runs)


def rerender(output: str | Path) -> Path:
    """Rewrite `<output>.md` from `<output>.json` (after a change to the table's layout)."""
    data = json.loads(Path(output).with_suffix(".json").read_text())
    bench = BenchConfig(**data["bench"])
    cards = {q: DatasetCard(**c) for q, c in data["datasets"].items()}
    md = Path(output).with_suffix(".md")
    md.write_text(render(bench, cards, data["runs"]))
    return md


def _write(bench: BenchConfig, cards: dict[str, Any], runs: list[dict[str, Any]]) -> Path:
    out = Path(bench.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    from dataclasses import asdict

    out.with_suffix(".json").write_text(json.dumps(
        {"bench": asdict(bench), "datasets": {q: asdict(c) for q, c in cards.items()}, "runs": runs}, indent=2) + "\n")
    md = out.with_suffix(".md")
    md.write_text(render(bench, cards, runs))
    return md


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def _change(new: float, old: float) -> str:
    if not old or old != old or new != new:
        return "n/a"
    return f"{(new - old) / abs(old):+.0%}"


def render(bench: BenchConfig, cards: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    """The markdown table: per dataset and algorithm, means over seeds; CQL-Prior vs CQL beside the paper."""
    base = bench.algorithms[0]
    lines = [
        "# Offline RL: CQL vs CQL-Prior",
        "",
        f"Generated by `priorcache offline bench` from `{bench.experiment}` with overrides "
        f"`{' '.join(bench.overrides) or '(none)'}`; seeds {list(bench.seeds)}; "
        f"time to return = learner update seconds until the online evaluation (greedy, "
        f"held-out seeds) first reaches return {bench.target_return:g}. Return and success: the final "
        "held-out evaluation. Raw runs and curves: the `.json` beside this file.",
        "",
        "## Datasets",
        "",
        "| quality | behaviour | episodes | steps | return mean ± std | success | LLM queries / prior requests |",
        "|---|---|---|---|---|---|---|",
    ]
    for quality, c in cards.items():
        lines.append(f"| {quality} | {c.behaviour} | {c.episodes} | {c.steps} | {c.return_mean:.2f} ± "
                     f"{c.return_std:.2f} | {c.success_rate:.0%} | {c.llm_queries} / {c.prior_requests} |")
    lines += ["", "## TextWorld (discrete)", "",
              "Training asks no LLM (the prior is read from the dataset); the LLM queries of the whole bench are the "
              "recordings' (table above) plus the few of CQL-Prior's online evaluations for states no dataset holds.",
              "",
              "| dataset | algorithm | return | success | seeds reaching the return | time to return (s) | "
              "train time (s) | return vs CQL | time to return vs CQL |",
              "|---|---|---|---|---|---|---|---|---|"]
    for quality in cards:
        stats = {}
        for algorithm in bench.algorithms:
            rows = [r for r in runs if r["quality"] == quality and r["algorithm"] == algorithm]
            if not rows:
                continue
            reached = [r["to_target"]["train_time_s"] for r in rows if r["to_target"] is not None]
            stats[algorithm] = {
                "return": _mean([r["return"] for r in rows]), "success": _mean([r["success"] for r in rows]),
                "reached": f"{len(reached)}/{len(rows)}",
                # Time to return is compared only when every seed reached it.
                "ttr": _mean(reached) if len(reached) == len(rows) else float("nan"),
                "train": _mean([r["train_time_s"] for r in rows]),
            }
        for algorithm, st in stats.items():
            ref = stats.get(base)
            vs = ("(baseline)", "(baseline)") if algorithm == base or ref is None else (
                _change(st["return"], ref["return"]), _change(st["ttr"], ref["ttr"]))
            ttr = "not reached by every seed" if st["ttr"] != st["ttr"] else f"{st['ttr']:.1f}"
            lines.append(f"| {quality} | {algorithm} | {st['return']:.2f} | {st['success']:.0%} | {st['reached']} | "
                         f"{ttr} | {st['train']:.1f} | {vs[0]} | {vs[1]} |")
    lines += [
        "", "## Paper claims beside our numbers", "",
        "| task | paper: CQL-Prior vs CQL performance | paper: training time | measured here |",
        "|---|---|---|---|",
        f"| TextWorld (discrete) | {PAPER_PERFORMANCE} | {PAPER_TIME} | the \"vs CQL\" columns above |",
        f"| HalfCheetah (continuous) | {PAPER_PERFORMANCE} | {PAPER_TIME} | not measured: needs the continuous-control "
        "issue (MuJoCo envs, SAC-Prior) and a continuous CQL-Prior |",
        "",
    ]
    return "\n".join(lines)
