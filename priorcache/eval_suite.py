"""`priorcache eval SUITE.yaml`: every agent on every domain, one results table (markdown + CSV).

A suite (see `experiments/suites/text.yaml`) names domains, each an experiment YAML with
budget overrides, and agents:

- RL agents train, then evaluate on held-out seeds/games, through `run_experiment` (one
  MLflow run each, as `priorcache run` would): `ppo_prior`, `ppo_prior_uncached` (cache
  off: every prior request asks the LLM), `dqn_prior`, `ppo` (no prior); on the continuous
  envs `sac_prior`, `sac_prior_uncached` and `sac` (RLlib's SAC, no prior).
- Evaluation-only agents play the same held-out episodes: `direct_llm` (argmax of the
  prior, no RL), `react` (thought, then action scoring, same LLM, `baselines/react.py`),
  `rule` (WebShop's rule baseline, `baselines/webshop_rule.py`; WebShop domains only) and
  `random`. `sampled_llm` samples the prior instead of taking its argmax;
  `direct_llm_no_repeat` takes the argmax among the commands it has not yet played from the
  same observation this episode (it breaks the cycles a greedy agent falls into). Each is logged as
  its own MLflow run too. On the continuous envs only `random` (uniform actions) applies.

A domain may list its own `agents` (e.g. `rule` only where it applies); otherwise it runs
the suite's.

Variants compare one agent under several settings (e.g. the base against the fine-tuned
prior, or scoring rules): the suite's `variants` maps a name to overrides, and an agent
entry `direct_llm@tuned` is the agent with the variant `tuned`'s overrides (its own row);
`ppo_prior@tuned+greedy` applies `tuned`'s, then `greedy`'s.
`{domain}` in a variant's override is replaced by the domain's name, for per-domain files
such as `prior.llm.demos=.cache/demos/{domain}`.

Every row runs in a fresh local Ray instance, so LLM-pool and cache counters are the row's
own. Rows are appended to `<output>.csv` as they finish: an interrupted suite keeps its
rows and a rerun skips them (`--fresh` redoes all). `<output>.md` is regenerated from the
CSV each time (`--render-only` does only that, e.g. after merging rows run elsewhere),
with the per-domain cache saving (LLM queries, prior latency and wall time, uncached over
cached PPO-Prior or SAC-Prior) beside the success rates and returns it was bought with.
"""

from __future__ import annotations

import csv
import math
import os
import platform as stdlib_platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import ray

from priorcache.envs.continuous_env import CONTINUOUS_ENVS
from priorcache.platform.config import (
    ConfigError,
    ExperimentConfig,
    flatten,
    load_config,
    load_yaml_as,
    to_dict,
)

RL_AGENTS: dict[str, tuple[str, ...]] = {
    "ppo_prior": ("algorithm.name=ppo_prior",),
    "ppo_prior_uncached": ("algorithm.name=ppo_prior", "prior.cache.mode=off"),
    "dqn_prior": ("algorithm.name=dqn_prior",),
    "ppo": ("algorithm.name=ppo",),
    "sac_prior": ("algorithm.name=sac_prior",),
    "sac_prior_uncached": ("algorithm.name=sac_prior", "prior.cache.mode=off"),
    "sac": ("algorithm.name=sac",),
}
"""RL agents and the overrides that make them from a domain's experiment."""
CACHED_AGENTS = ("ppo_prior", "sac_prior")
"""Agents whose `<agent>_uncached` row the savings table compares them with."""
EVAL_AGENTS = ("direct_llm", "direct_llm_no_repeat", "sampled_llm", "react", "rule", "random")
"""Agents that only evaluate."""
AGENTS = (*RL_AGENTS, *EVAL_AGENTS)

COLUMNS = (
    "domain", "agent", "success_rate", "episode_return_mean", "episode_len_mean", "episodes",
    "train_env_steps", "llm_queries", "prior_requests", "cache_hit_rate", "prior_latency_ms_p50",
    "llm_latency_ms_p50", "wall_time_s", "mlflow_run_id",
)
"""The CSV columns (fixed, so tables compare across versions)."""


@dataclass
class DomainSpec:
    """One domain of a suite."""

    experiment: str
    """Experiment YAML (relative to the working directory)."""
    overrides: list[str] = field(default_factory=list)
    """Budget and size overrides, `key=value`, applied to every agent on this domain."""
    agents: list[str] = field(default_factory=list)
    """This domain's agents, in table order; empty: the suite's `agents`."""
    note: str = ""
    """Markdown printed under the domain's heading: what its budget leaves out, where a wider
    measurement of the same agents lives."""


@dataclass
class EvalSuiteConfig:
    """A results table: which agents on which domains, written where."""

    name: str = "text"
    """Suite name (MLflow run names are `<suite>-<domain>-<agent>`)."""
    output: str = "docs/results/text"
    """Writes `<output>.md` and `<output>.csv`."""
    agents: list[str] = field(default_factory=lambda: list(AGENTS))
    """Agents, in table order: one of `AGENTS`, or `<agent>@<variant>[+<variant>...]` for named variants."""
    variants: dict[str, list[str]] = field(default_factory=dict)
    """Variant name -> overrides applied on top of the domain's and the agent's (`{domain}`: the domain name)."""
    domains: dict[str, DomainSpec] = field(default_factory=dict)
    """Domain name -> experiment and overrides, in table order."""
    overrides: list[str] = field(default_factory=list)
    """Overrides applied to every run (e.g. tracking.experiment=results)."""
    react_thought_tokens: int = 24
    """Most tokens of a ReAct thought."""


def load_suite(path: str | Path, domains: Sequence[str] = (), agents: Sequence[str] = ()) -> EvalSuiteConfig:
    """Read and check a suite YAML; ConfigError naming the key otherwise. The experiments are
    checked for the rows `domains` x `agents` select (all when empty): a row that will not run
    may name a file not made yet (another domain's adapter)."""
    if not Path(path).is_file():
        raise ConfigError(f"suite file {path} does not exist: pass a YAML like experiments/suites/text.yaml")
    suite = load_yaml_as(EvalSuiteConfig, path, "suite")
    if not suite.domains:
        raise ConfigError("suite key 'domains' is empty: name at least one experiment YAML")
    lists = {"agents": suite.agents, **{f"domains.{d}.agents": s.agents for d, s in suite.domains.items()}}
    for key, listed in lists.items():
        unknown = [a for a in listed if split_agent(a)[0] not in AGENTS]
        if unknown:
            raise ConfigError(f"suite key '{key}': unknown {unknown}; choose from {', '.join(AGENTS)}")
        undefined = [a for a in listed if not set(variant_names(a)) <= set(suite.variants)]
        if undefined:
            raise ConfigError(f"suite key '{key}': {undefined} name variants that suite key 'variants' does not define")
    for domain in [d for d in suite.domains if not domains or d in domains]:
        # Fail on a bad experiment before hours of runs, not during.
        for agent in [a for a in domain_agents(suite, domain) if not agents or a in agents]:
            cfg = run_config(suite, domain, agent)
            if split_agent(agent)[0] == "rule" and cfg.env.name != "webshop":
                raise ConfigError(f"suite domain {domain!r}: agent 'rule' plays WebShop only (env.name is "
                                  f"{cfg.env.name!r}); list agents per domain with 'domains.{domain}.agents'")
            kind = split_agent(agent)[0]
            if cfg.env.name in CONTINUOUS_ENVS and kind in EVAL_AGENTS and kind != "random":
                raise ConfigError(f"suite domain {domain!r}: agent {kind!r} acts on text commands; on a continuous "
                                  f"env (env.name={cfg.env.name!r}) the evaluation-only agent is 'random'")
    return suite


def domain_agents(suite: EvalSuiteConfig, domain: str) -> list[str]:
    """The agents of one domain's rows, in table order."""
    return suite.domains[domain].agents or suite.agents


def split_agent(entry: str) -> tuple[str, str]:
    """`direct_llm@tuned` -> ("direct_llm", "tuned"); a plain agent has the variant ""."""
    agent, _, variant = entry.partition("@")
    return agent, variant


def variant_names(entry: str) -> list[str]:
    """`ppo_prior@tuned+greedy` -> ["tuned", "greedy"], in the order their overrides apply."""
    variant = split_agent(entry)[1]
    return variant.split("+") if variant else []


def run_config(suite: EvalSuiteConfig, domain: str, agent: str) -> ExperimentConfig:
    """The experiment config of one row."""
    spec = suite.domains[domain]
    tag = f"{suite.name}-{domain}-{agent}".replace("@", "-").replace("+", "-")
    base = split_agent(agent)[0]
    variant_overrides = [item.replace("{domain}", domain)
                         for name in variant_names(agent) for item in suite.variants[name]]
    return load_config(spec.experiment, [*spec.overrides, *suite.overrides, *RL_AGENTS.get(base, ()),
                                         *variant_overrides, f"name={tag}", f"prior.cache.namespace={tag}"])


def run_suite(suite: EvalSuiteConfig, domains: Sequence[str] = (), agents: Sequence[str] = (),
              fresh: bool = False, render_only: bool = False, log: Callable[[str], None] = print) -> Path:
    """Run the missing rows (none with `render_only`), then write the markdown table; returns its path.

    `fresh` redoes the selected rows (`domains` x `agents`, all when empty); every other row of
    the CSV is kept, and an old row stays until its new one is written (an interrupted `fresh`
    run loses nothing). Several invocations on one suite may run at once: each adds its rows.
    """
    csv_path = Path(f"{suite.output}.csv")
    selected = [] if render_only else [(domain, agent) for domain in domains or suite.domains
                                       for agent in domain_agents(suite, domain) if not agents or agent in agents]
    done = set() if fresh else {(r["domain"], r["agent"]) for r in read_rows(csv_path)}
    for domain, agent in selected:
        if (domain, agent) in done:
            log(f"[{domain} / {agent}] already in {csv_path}, skipped")
            continue
        log(f"[{domain} / {agent}] running")
        row = run_row(suite, domain, agent)
        # Read again before writing: another `priorcache eval` on this suite (other domains or
        # agents) may have added rows since; a redone row replaces its old one only now.
        write_rows(csv_path, [r for r in read_rows(csv_path) if (r["domain"], r["agent"]) != (domain, agent)] + [row])
        log(f"[{domain} / {agent}] success {row['success_rate']:.2f}, LLM queries {row['llm_queries']:.0f}, "
            f"{row['wall_time_s']:.0f} s")
    md_path = Path(f"{suite.output}.md")
    md_path.write_text(render_markdown(suite, read_rows(csv_path)))
    return md_path


def run_row(suite: EvalSuiteConfig, domain: str, agent: str) -> dict[str, Any]:
    """Train and/or evaluate one agent on one domain, in a fresh local Ray instance."""
    cfg = run_config(suite, domain, agent)
    try:
        if split_agent(agent)[0] in RL_AGENTS:
            return _rl_row(cfg, domain, agent)
        return _eval_only_row(cfg, domain, agent, suite.react_thought_tokens)
    finally:
        ray.shutdown()


def _rl_row(cfg: ExperimentConfig, domain: str, agent: str) -> dict[str, Any]:
    from priorcache.experiment import run_experiment

    outcome = run_experiment(cfg)
    return _row(domain, agent, outcome.summary, train_env_steps=outcome.summary["env_steps"],
                mlflow_run_id=outcome.mlflow_run_id)


def _eval_only_row(cfg: ExperimentConfig, domain: str, agent: str, thought_tokens: int) -> dict[str, Any]:
    from priorcache.envs.registry import env_config, make_env, make_text_env, register
    from priorcache.evaluation import (
        NoRepeatDirectLLM, PriorTally, direct_llm_policy, evaluate, prior_policy, random_policy,
    )
    from priorcache.experiment import init_ray, preflight
    from priorcache.platform.prior_client import connect
    from priorcache.platform.tracking import RunTracker

    started = time.monotonic()
    cfg = preflight(cfg)
    init_ray(cfg.ray)
    register()
    with RunTracker(cfg.tracking, cfg.name, flatten(to_dict(cfg))) as tracker:
        tracker.set_tags({"agent": agent, "domain": domain})
        metrics: dict[str, float] = {}
        kind = split_agent(agent)[0]

        def play(env: Any, policy: Any) -> Any:
            """The row's held-out episodes with `policy`; the env is closed afterwards."""
            try:
                return evaluate(env, policy, cfg.eval.episodes, cfg.eval.seed, label=f"[{domain} / {agent}]")
            finally:
                env.close()

        if kind == "rule":
            from priorcache.baselines.webshop_rule import WebShopRuleAgent

            result = play(make_text_env(cfg.env, role="eval"), WebShopRuleAgent())
            metrics = {"llm_queries": 0.0}
        elif kind == "react":
            from priorcache.baselines.react import ReActAgent

            react = ReActAgent(cfg.prior.llm, max_thought_tokens=thought_tokens)
            try:
                result = play(make_text_env(cfg.env, role="eval"), react)
            finally:
                react.close()
            metrics = {"llm_queries": react.stats.llm_calls, "prior_requests": react.stats.steps,
                       "llm_latency_ms_p50": float(np.median(react.stats.latency_ms))}
        elif cfg.env.name in CONTINUOUS_ENVS:  # only `random` evaluates alone here (load_suite checks)
            from priorcache.envs.registry import make_continuous_rllib_env
            from priorcache.evaluation import continuous_random_policy

            env = make_continuous_rllib_env(env_config(cfg.env, cfg.prior, False, role="eval"))
            result = play(env, continuous_random_policy(env.action_space))
            metrics = {"llm_queries": 0.0}
        else:
            policy = {"direct_llm": direct_llm_policy, "direct_llm_no_repeat": NoRepeatDirectLLM(),
                      "sampled_llm": prior_policy}.get(kind, random_policy)
            use_prior = policy is not random_policy
            pool = connect(cfg.prior)[1] if use_prior else None
            env = PriorTally(make_env(env_config(cfg.env, cfg.prior, use_prior, role="eval")))
            result = play(env, policy)
            metrics = {"llm_queries": 0.0}
            if pool is not None:
                # An audit is one more LLM request: it gets as long as a request would.
                env.finish_audits(cfg.prior.llm.timeout_s)
                stats = ray.get(pool.stats.remote())
                pool_metrics = {k: stats[k] for k in ("llm_queries", "llm_latency_ms_p50") if k in stats}
                metrics = {**env.metrics(), **pool_metrics}
        summary = {**result.as_dict(), **metrics, "wall_time_s": time.monotonic() - started}
        tracker.log_metrics({k: float(v) for k, v in summary.items()}, step=0)
        return _row(domain, agent, summary, train_env_steps=0, mlflow_run_id=tracker.run_id)


def _row(domain: str, agent: str, values: dict[str, Any], **extra: Any) -> dict[str, Any]:
    row = {c: values.get(c, math.nan) for c in COLUMNS}
    row.update(domain=domain, agent=agent, **extra)
    return row


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a results CSV (numbers as floats); [] when it does not exist."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [{k: (v if k in ("domain", "agent", "mlflow_run_id") else float(v)) for k, v in r.items()}
                for r in csv.DictReader(f)]


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite the CSV atomically (a crash never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # per process: evals may run side by side
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def format_cell(value: Any, spec: str) -> str:
    """A number for a results table; "–" for a missing (None or nan) value."""
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def wilson_interval(rate: float, episodes: float, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a success rate over `episodes` episodes (unlike
    rate ± z·se it stays inside [0, 1] and is not empty at 0 or 1 successes)."""
    shrink = 1.0 + z * z / episodes
    centre = (rate + z * z / (2 * episodes)) / shrink
    half = z / shrink * math.sqrt(rate * (1.0 - rate) / episodes + z * z / (4 * episodes * episodes))
    return max(0.0, centre - half), min(1.0, centre + half)


def format_success(rate: Any, episodes: Any) -> str:
    """`0.40 (0.26–0.55)`: the success rate and its 95% Wilson interval (10 episodes cannot tell
    0.2 from 0.4); "–" for a missing rate."""
    cell = format_cell(rate, ".2f")
    if cell == "–" or not episodes or math.isnan(float(episodes)):
        return cell
    low, high = wilson_interval(float(rate), float(episodes))
    return f"{cell} ({low:.2f}–{high:.2f})"


def render_markdown(suite: EvalSuiteConfig, rows: list[dict[str, Any]]) -> str:
    """The results document: one table per domain, then the cache's savings per domain."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# Results: {suite.name}",
        "",
        f"Generated by `priorcache eval` from `{suite.output}.csv` ({stamp}, {stdlib_platform.machine()}, "
        f"{os.cpu_count()} CPUs, no GPU). Success (with its 95% Wilson interval over the row's episodes; "
        "\"–\" where the env has none, as on MuJoCo locomotion: compare returns), return and steps are "
        "held-out evaluation episodes (eval seeds, and held-out games where the domain has them); LLM "
        "queries, prior requests, hit rate and latencies are the training run's for RL agents and the "
        "evaluation's otherwise. p50 latencies in ms. Budgets:",
        "",
    ]
    if suite.overrides:
        lines.append(f"- every row: `{' '.join(suite.overrides)}`")
    for domain, spec in suite.domains.items():
        lines.append(f"- **{domain}**: `{spec.experiment}` with `{' '.join(spec.overrides) or '(as is)'}`")
    for name, overrides in suite.variants.items():  # after the above: `agent@name` adds these last
        lines.append(f"- `@{name}`: `{' '.join(overrides)}`")
    by_domain: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_domain.setdefault(row["domain"], []).append(row)
    missing = [f"{d} / {a}" for d in suite.domains for a in domain_agents(suite, d)
               if a not in {r["agent"] for r in by_domain.get(d, [])}]
    if missing:
        lines += ["", f"Not measured yet ({len(missing)} rows; `priorcache eval` on this suite runs just these): "
                  + ", ".join(missing) + "."]
    for domain, domain_rows in by_domain.items():
        note = suite.domains[domain].note if domain in suite.domains else ""
        lines += ["", f"## {domain}", "", *([note, ""] if note else []),
                  "| agent | success (95% CI) | return | steps | train env steps | LLM queries | prior requests "
                  "| hit rate | prior p50 | LLM p50 | wall s |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        order = {a: i for i, a in enumerate(domain_agents(suite, domain) if domain in suite.domains else suite.agents)}
        for r in sorted(domain_rows, key=lambda r: order.get(r["agent"], len(order))):
            lines.append(
                f"| {r['agent']} | {format_success(r['success_rate'], r['episodes'])} | {format_cell(r['episode_return_mean'], '.2f')} "
                f"| {format_cell(r['episode_len_mean'], '.1f')} | {format_cell(r['train_env_steps'], '.0f')} "
                f"| {format_cell(r['llm_queries'], '.0f')} | {format_cell(r['prior_requests'], '.0f')} "
                f"| {format_cell(r['cache_hit_rate'], '.1%')} | {format_cell(r['prior_latency_ms_p50'], '.2f')} "
                f"| {format_cell(r['llm_latency_ms_p50'], '.0f')} | {format_cell(r['wall_time_s'], '.0f')} |"
            )
    savings = []
    for domain, domain_rows in by_domain.items():
        agents = {r["agent"]: r for r in domain_rows}
        pairs = [(agents[c], agents[f"{c}_uncached"]) for c in CACHED_AGENTS if c in agents and f"{c}_uncached" in agents]
        if not pairs:
            continue
        cached, uncached = pairs[0]
        savings.append(
            f"| {domain} | {cached['agent']} | {_ratio(uncached['llm_queries'], cached['llm_queries'])} "
            f"({uncached['llm_queries']:.0f} / {cached['llm_queries']:.0f}) "
            f"| {_ratio(uncached['prior_latency_ms_p50'], cached['prior_latency_ms_p50'])} "
            f"| {_ratio(uncached['wall_time_s'], cached['wall_time_s'])} "
            f"| {format_cell(cached['success_rate'], '.2f')} | {format_cell(uncached['success_rate'], '.2f')} "
            f"| {format_cell(cached['episode_return_mean'], '.1f')} | {format_cell(uncached['episode_return_mean'], '.1f')} |"
        )
    if savings:
        lines += ["", "## What the cache saves", "",
                  "PPO-Prior or SAC-Prior with its experiment's cache (`prior.cache.mode`) against the same run "
                  "with the cache off, per domain.", "",
                  "| domain | agent | LLM queries uncached / cached | prior p50 uncached / cached | wall time uncached / cached "
                  "| success cached | success uncached | return cached | return uncached |",
                  "|---|---|---|---|---|---|---|---|---|", *savings]
    return "\n".join(lines) + "\n"


def _ratio(numerator: float, denominator: float) -> str:
    if not denominator or math.isnan(numerator) or math.isnan(denominator):
        return "–"
    return f"{numerator / denominator:.1f}x"
