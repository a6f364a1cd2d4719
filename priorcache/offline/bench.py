"""`priorcache offline bench BENCH`: CQL vs CQL-Prior on the same datasets and seeds, per domain.

A bench YAML (`BenchConfig`) lists domains (`DomainBench`: a base experiment, overrides for
every run, dataset qualities, the algorithms compared and a fixed return) and the seeds every
run uses. Per domain the bench records each quality's dataset once (skipped when its folder is
complete, unless `--fresh-datasets`), then trains every algorithm with every seed on it through
`priorcache run`'s harness (`run_experiment`: an MLflow run, `summary.json`, held-out
evaluation). Each domain runs in a Ray session of its own, its recordings and runs sharing one
cache.

Resume: runs already in `<output>.json` are kept, not rerun, when their domain's experiment and
overrides are unchanged (and `--fresh-datasets` is not given): adding a domain to a bench
measures only the new domain. Domains no longer in the YAML are dropped from the output.

Per run it keeps the online evaluation of every iteration (`offline.eval_interval`) and the
learner's cumulative update time; "time to return R" is that time at the first evaluation
whose mean return reaches the domain's R (none if it never does). It writes `<output>.json`
(every run, every curve) and `<output>.md` (means over seeds, CQL-Prior relative to CQL, the
paper's claims beside).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ray

from priorcache.eval_suite import format_cell
from priorcache.offline.behaviour import QUALITIES
from priorcache.offline.dataset import CARD_JSON, DatasetCard, dataset_dir, load_card, run_dataset
from priorcache.platform.config import ConfigError, load_config, load_yaml_as

PAPER_PERFORMANCE = "+14–29%"
PAPER_TIME = "−38–40%"


OFFLINE_ALGORITHMS = ("cql", "cql_prior", "cql_continuous", "cql_prior_continuous")
"""The algorithms a bench can compare (text envs: the first two; continuous envs: the last two)."""


@dataclass
class DomainBench:
    """One domain of a bench: which experiment, datasets and algorithms, and the fixed return."""

    name: str = "textworld"
    """Key of the domain's datasets and runs in the JSON (and its run names)."""
    title: str = "TextWorld (discrete)"
    """Heading of its section in the table."""
    experiment: str = "experiments/textworld_cql_prior.yaml"
    """Base experiment YAML every run of the domain starts from."""
    overrides: list[str] = field(default_factory=list)
    """`key=value` overrides for every run and every recording (e.g. train.iterations=10)."""
    qualities: list[str] = field(default_factory=lambda: list(QUALITIES))
    """Dataset qualities (random, medium, expert), each recorded once and shared by every run."""
    algorithms: list[str] = field(default_factory=lambda: ["cql", "cql_prior"])
    """Algorithms compared; the first is the baseline the others are compared with."""
    target_return: float = 3.0
    """The fixed return whose first reach times training (time to return)."""


@dataclass
class BenchConfig:
    """An offline bench: its domains, the seeds of every run, and where the table goes."""

    name: str = "offline"
    """Bench name (prefix of its runs' names)."""
    domains: list[DomainBench] = field(default_factory=lambda: [DomainBench()])
    """The domains measured, in the order of the table's sections."""
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    """Training seeds; every algorithm runs every seed on every dataset."""
    output: str = "docs/results/offline"
    """Path of the results without suffix: `.md` and `.json` are written."""


def load_bench(path: str | Path) -> BenchConfig:
    """A bench YAML merged onto `BenchConfig`; ConfigError naming the key otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"bench file {path} does not exist: pass a YAML under experiments/offline/")
    bench = load_yaml_as(BenchConfig, path, "bench")
    if not bench.seeds:
        raise ConfigError("bench key 'seeds' is empty; give at least one seed")
    if not bench.domains or len({d.name for d in bench.domains}) != len(bench.domains):
        raise ConfigError("bench key 'domains' must list at least one domain, each with its own 'name'")
    for i, domain in enumerate(bench.domains):
        for key, values, choices in (("qualities", domain.qualities, QUALITIES),
                                     ("algorithms", domain.algorithms, OFFLINE_ALGORITHMS)):
            if not values or any(v not in choices for v in values):
                raise ConfigError(f"bench key 'domains[{i}].{key}' is {values}; choose among {', '.join(choices)}")
        for algorithm in domain.algorithms:
            # A bad experiment, override or algorithm for the env fails here, before Ray.
            try:
                load_config(domain.experiment, [*domain.overrides, f"algorithm.name={algorithm}"])
            except ConfigError as err:
                raise ConfigError(f"bench key 'domains[{i}]' ({domain.name}): {err}") from err
    return bench


def time_to_return(curve: list[dict[str, float]], target: float) -> dict[str, float] | None:
    """The first point of `curve` whose evaluation return reaches `target` (None if none does)."""
    for point in curve:
        if point["return"] == point["return"] and point["return"] >= target:  # NaN: no evaluation then
            return point
    return None


def run_bench(bench: BenchConfig, fresh_datasets: bool = False) -> Path:
    """Record the datasets, train every (domain, quality, algorithm, seed) not already stored, write
    the tables; returns the .md."""
    cards, runs = ({}, []) if fresh_datasets else stored_results(bench)
    for domain in bench.domains:
        try:
            _run_domain(bench, domain, cards, runs, fresh_datasets)
        finally:
            # Each domain in a Ray session of its own: a finished domain's idle LLM replicas still
            # reserve their CPUs, which on a 2-core machine left the next domain's Ray Data tasks
            # (the dataset write) waiting forever.
            ray.shutdown()
    return _write(bench, cards, runs)


def _run_domain(bench: BenchConfig, domain: DomainBench, cards: dict[str, dict[str, DatasetCard]],
                runs: list[dict[str, Any]], fresh_datasets: bool) -> None:
    """Record `domain`'s datasets and train its runs not in `runs` (appended, written after each)."""
    from priorcache.experiment import run_experiment

    cards.setdefault(domain.name, {})
    for quality in domain.qualities:
        overrides = [*domain.overrides, f"offline.quality={quality}"]
        folder = dataset_dir(load_config(domain.experiment, overrides))
        todo = [(a, s) for a in domain.algorithms for s in bench.seeds
                if not any(_key(r) == (domain.name, quality, a, s) for r in runs)]
        if not todo:
            continue
        if fresh_datasets or not (folder / CARD_JSON).is_file():
            run_dataset(domain.experiment, overrides)
        cards[domain.name][quality] = load_card(folder)
        for algorithm, seed in todo:
            cfg = load_config(domain.experiment, [
                *overrides, f"offline.dataset={folder}", f"algorithm.name={algorithm}", f"seed={seed}",
                f"name={bench.name}-{domain.name}-{quality}-{algorithm}-s{seed}"])
            curve: list[dict[str, float]] = []
            outcome = run_experiment(cfg, on_iteration=lambda i, m: curve.append(
                {"iteration": i, "train_time_s": m["train_time_s"], "wall_time_s": m["wall_time_s"],
                 "return": m["episode_return_mean"], "success": m["success_rate"]}))
            s = outcome.summary
            runs.append({
                "domain": domain.name, "quality": quality, "algorithm": algorithm, "seed": seed,
                "run_dir": str(outcome.run_dir), "mlflow_run_id": outcome.mlflow_run_id,
                "return": s["episode_return_mean"], "success": s["success_rate"], "episodes": s["episodes"],
                "train_time_s": s["train_time_s"],
                # The pool's queries since the domain's Ray session began (its recordings and runs so far).
                "wall_time_s": s["wall_time_s"], "session_llm_queries": s["llm_queries"],
                "prior_requests": s["prior_requests"], "to_target": time_to_return(curve, domain.target_return),
                "curve": curve,
            })
            _write(bench, cards, runs)  # after every run: an interrupted bench keeps what it measured


def _key(run: dict[str, Any]) -> tuple[str, str, str, int]:
    return run["domain"], run["quality"], run["algorithm"], run["seed"]


def stored_results(bench: BenchConfig) -> tuple[dict[str, dict[str, DatasetCard]], list[dict[str, Any]]]:
    """The cards and runs of `<output>.json` still valid for `bench`: those of its domains whose
    experiment and overrides are unchanged, for its seeds and qualities."""
    path = Path(bench.output).with_suffix(".json")
    if not path.is_file():
        return {}, []
    data = json.loads(path.read_text())
    before = {d["name"]: d for d in data["bench"]["domains"]}
    valid = {d.name: d for d in bench.domains if d.name in before
             and (before[d.name]["experiment"], before[d.name]["overrides"]) == (d.experiment, d.overrides)}
    runs = [r for r in data["runs"] if r["domain"] in valid and r["seed"] in bench.seeds
            and r["quality"] in valid[r["domain"]].qualities and r["algorithm"] in valid[r["domain"]].algorithms]
    cards = {name: {q: DatasetCard(**c) for q, c in data["datasets"].get(name, {}).items()
                    if q in valid[name].qualities} for name in valid}
    return cards, runs


def _bench_from_json(data: dict[str, Any]) -> BenchConfig:
    fields = data["bench"]
    return BenchConfig(name=fields["name"], domains=[DomainBench(**d) for d in fields["domains"]],
                       seeds=fields["seeds"], output=fields["output"])


def rerender(output: str | Path) -> Path:
    """Rewrite `<output>.md` from `<output>.json` (after a change to the table's layout)."""
    data = json.loads(Path(output).with_suffix(".json").read_text())
    cards = {d: {q: DatasetCard(**c) for q, c in by_quality.items()} for d, by_quality in data["datasets"].items()}
    md = Path(output).with_suffix(".md")
    md.write_text(render(_bench_from_json(data), cards, data["runs"]))
    return md


def _write(bench: BenchConfig, cards: dict[str, dict[str, DatasetCard]], runs: list[dict[str, Any]]) -> Path:
    out = Path(bench.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    datasets = {d: {q: asdict(c) for q, c in by_quality.items()} for d, by_quality in cards.items()}
    out.with_suffix(".json").write_text(json.dumps(
        {"bench": asdict(bench), "datasets": datasets, "runs": runs}, indent=2) + "\n")
    md = out.with_suffix(".md")
    md.write_text(render(bench, cards, runs))
    return md


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def _change(new: float, old: float) -> str:
    """new relative to old; a baseline <= 0 (a return) has no meaningful ratio: the difference, "abs."."""
    if old != old or new != new:
        return "n/a"
    if old <= 0:
        return f"{new - old:+.2f} abs."
    return f"{(new - old) / old:+.0%}"


def _domain_lines(domain: DomainBench, cards: dict[str, DatasetCard], runs: list[dict[str, Any]]) -> list[str]:
    """A domain's section: its datasets, then per dataset and algorithm the means over seeds."""
    base = domain.algorithms[0]
    lines = [
        f"## {domain.title}", "",
        f"From `{domain.experiment}` with overrides `{' '.join(domain.overrides) or '(none)'}`; time to return = "
        f"learner update seconds until the online evaluation (greedy, held-out seeds) first reaches return "
        f"{domain.target_return:g}. Return and success: the final held-out evaluation. \"abs.\": the difference "
        "of returns, where the baseline's return is <= 0 and a percentage would mean nothing.", "",
        "| quality | behaviour | episodes | steps | return mean ± std | success | LLM queries / prior requests |",
        "|---|---|---|---|---|---|---|",
    ]
    for quality, c in cards.items():
        lines.append(f"| {quality} | {c.behaviour} | {c.episodes} | {c.steps} | {c.return_mean:.2f} ± "
                     f"{c.return_std:.2f} | {format_cell(c.success_rate, '.0%')} | {c.llm_queries} / {c.prior_requests} |")
    lines += ["", f"| dataset | algorithm | return | success | seeds reaching the return | time to return (s) | "
              f"train time (s) | return vs {base} | time to return vs {base} |",
              "|---|---|---|---|---|---|---|---|---|"]
    for quality in cards:
        stats = {}
        for algorithm in domain.algorithms:
            rows = [r for r in runs if r["domain"] == domain.name and r["quality"] == quality
                    and r["algorithm"] == algorithm]
            if not rows:
                continue
            reached = [hit["train_time_s"] for r in rows
                       if (hit := time_to_return(r["curve"], domain.target_return)) is not None]
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
            success = format_cell(st["success"], ".0%")
            lines.append(f"| {quality} | {algorithm} | {st['return']:.2f} | {success} | {st['reached']} | "
                         f"{ttr} | {st['train']:.1f} | {vs[0]} | {vs[1]} |")
    return lines + [""]


def render(bench: BenchConfig, cards: dict[str, dict[str, DatasetCard]], runs: list[dict[str, Any]]) -> str:
    """The markdown: per domain its datasets and CQL-Prior vs CQL; the paper's claims beside."""
    lines = [
        "# Offline RL: CQL vs CQL-Prior",
        "",
        f"Generated by `priorcache offline bench` (bench `{bench.name}`); seeds {list(bench.seeds)}. Training asks "
        "no LLM (the prior is read from the dataset); the LLM queries of the whole bench are the recordings' "
        "(dataset tables) plus the few of the prior algorithms' online evaluations for states no dataset holds. "
        "Raw runs and curves: the `.json` beside this file.",
        "",
    ]
    for domain in bench.domains:
        lines += _domain_lines(domain, cards.get(domain.name, {}), runs)
    lines += [
        "## Paper claims beside our numbers", "",
        "| task | paper: CQL-Prior vs CQL performance | paper: training time | measured here |",
        "|---|---|---|---|",
    ]
    for domain in bench.domains:
        lines.append(f"| {domain.title} | {PAPER_PERFORMANCE} | {PAPER_TIME} | the \"vs {domain.algorithms[0]}\" "
                     f"columns of its section above |")
    return "\n".join(lines + [""])
