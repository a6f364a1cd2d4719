"""`priorcache bench cache-policies`: every cache policy on the same env steps, side by side.

How to run:
    .venv/bin/priorcache bench cache-policies                     # benchmarks/cache_policies.yaml
    .venv/bin/priorcache bench cache-policies --envs textworld --steps 100
    .venv/bin/priorcache bench cache-policies --envs alfworld --policies adaptive,per-entry  # beside another

For each environment and each policy (uncached, exact-match LRU, static semantic thresholds,
adaptive, per-entry, ...) one agent plays the same episodes (same seeds, same env-step budget)
acting by sampling from the prior the cache serves: what the policy saves in LLM queries
and latency, and what it costs in prior quality (audited KL(cached || fresh), argmax flips of
audited hits, return and success relative to uncached), is measured in one process, one
after the other, on one shared LLM replica pool. Every policy gets a fresh cache namespace.
The adaptive policies run the meta-optimizer online (one update per `window` env steps);
every window also records the measured KL per hit beside the paper-style bound.

Writes `<output>.json` (one object per (env, policy), DESIGN.md metric names), `<output>.md`
(the ratio table, with the command that made it) and `<output>.png` (KL vs bound per window).
Each finished cell is also appended to `<output>.cells.jsonl` at once, so an interrupted or
crashed benchmark loses only the cell it was in: run the same command again and the cells
recorded with the same settings are kept, not re-run (`--fresh` runs them all again). The
file is removed once the report is written. `--policies a,b` runs only those cells and records
them without a report, so a second invocation can take some policies on other cores; the
first one reads the file before each cell and keeps what the second recorded.

Results to expect: see docs/results/cache.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from priorcache.algorithms.prior_metrics import episode_success
from priorcache.envs.expert_agreement import ExpertAgreement
from priorcache.envs.experts import FOLLOWING_EXPERTS
from priorcache.platform.config import ConfigError, ExperimentConfig, load_config
from priorcache.platform.prior_client import HIT_SOURCES
from priorcache.progress import Progress

DEFAULT_CONFIG = "benchmarks/cache_policies.yaml"
STATIC_PREFIX = "static-"


@dataclass
class BenchEnv:
    """One environment of the benchmark."""

    experiment: str = ""
    """Experiment YAML whose `env` and `prior` sections the benchmark uses (relative to the bench file)."""
    overrides: list[str] = field(default_factory=list)
    """`key=value` overrides applied on top of it."""


@dataclass
class CacheBenchConfig:
    """The benchmark: environments x cache policies, one env-step budget."""

    output: str = "docs/results/cache"
    """Path stem of the .json, .md and .png it writes (relative to the working directory)."""
    steps: int = 300
    """Env steps per (environment, policy)."""
    window: int = 25
    """Env steps per meta-optimizer update and per KL-bound window."""
    seed: int = 0
    """Episode k of every policy is reset with seed + k and samples actions with that seed."""
    audit_rate: float = 0.3
    """Share of semantic hits re-scored to measure their KL (higher: better estimate, more LLM load)."""
    audit_wait_s: float = 30.0
    """How long to wait for audits still in flight after the last step of a policy."""
    envs: dict[str, BenchEnv] = field(default_factory=dict)
    """Environment name -> its experiment."""
    policies: dict[str, dict[str, str]] = field(default_factory=dict)
    """Policy name -> cache overrides; names starting with `static-` form the static grid."""


def load_bench(path: str | Path, envs: list[str], steps: int | None) -> tuple[CacheBenchConfig, Path]:
    """The benchmark config, restricted to `envs` (all when empty); errors name the field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"benchmark file {path} does not exist (the default is {DEFAULT_CONFIG})")
    try:
        raw = OmegaConf.load(path)
        cfg: CacheBenchConfig = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(CacheBenchConfig), raw))
    except OmegaConfBaseException as err:
        raise ConfigError(f"{path}: key {getattr(err, 'full_key', '?')!r}: {str(err).splitlines()[0]}") from err
    unknown = [name for name in envs if name not in cfg.envs]
    if unknown:
        raise ConfigError(f"--envs: {unknown} not in {path}; choose from {', '.join(cfg.envs)}")
    if envs:
        cfg.envs = {name: cfg.envs[name] for name in envs}
    if steps is not None:
        cfg.steps = steps
    if not cfg.envs or not cfg.policies:
        raise ConfigError(f"{path}: needs at least one entry under 'envs' and one under 'policies'")
    if "uncached" not in cfg.policies:
        raise ConfigError(f"{path}: 'policies' needs an 'uncached' entry (every ratio is relative to it)")
    if cfg.steps < 1 or cfg.window < 1:
        raise ConfigError(f"{path}: 'steps' and 'window' must be >= 1")
    return cfg, path.parent


def experiment_for(bench: CacheBenchConfig, base_dir: Path, env_name: str, policy: str, stamp: str) -> ExperimentConfig:
    """The experiment config one (env, policy) cell runs with: fresh namespace, bench audit rate."""
    env = bench.envs[env_name]
    overrides = [*env.overrides, *(f"{k}={v}" for k, v in bench.policies[policy].items()),
                 f"prior.cache.namespace=bench-{stamp}-{env_name}-{policy}",
                 f"prior.cache.audit_rate={bench.audit_rate}"]
    try:
        return load_config(base_dir / env.experiment, overrides)
    except ConfigError as err:
        raise ConfigError(f"envs.{env_name} / policies.{policy}: {err}") from err


def cell_fingerprint(bench: CacheBenchConfig, base_dir: Path, env_name: str, policy: str) -> str:
    """What decides a cell's numbers: its env's experiment (file text and overrides), its cache
    overrides and the bench's step budget, window, seed and audit settings."""
    env = bench.envs[env_name]
    experiment = base_dir / env.experiment
    spec = {
        "env": env_name, "policy": policy, "overrides": env.overrides, "cache": bench.policies[policy],
        "experiment": experiment.read_text() if experiment.is_file() else env.experiment,
        "steps": bench.steps, "window": bench.window, "seed": bench.seed, "audit_rate": bench.audit_rate,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


class CellLog:
    """`<output>.cells.jsonl`: the rows of finished cells, appended one by one, read back by the
    next invocation so that an interrupted benchmark goes on where it stopped."""

    def __init__(self, output: str | Path, fresh: bool) -> None:
        self.path = Path(output).with_suffix(".cells.jsonl")
        if self.path.is_file() and fresh:
            self.path.unlink()
        elif self.path.is_file():
            text = self.path.read_text()
            if not text.endswith("\n"):  # a kill mid-write cut the last line: drop it, run that cell again
                self.path.write_text(text[: text.rfind("\n") + 1])
        self.rows: dict[str, dict[str, Any]] = {}
        self.refresh()

    def refresh(self) -> None:
        """Read the rows again: another invocation (`--policies`) may have added some meanwhile."""
        text = self.path.read_text() if self.path.is_file() else ""
        for line in text.splitlines(keepends=True):
            if line.endswith("\n"):  # a line still being written by another invocation is not a row yet
                record = json.loads(line)
                self.rows[record["fingerprint"]] = record["row"]

    def append(self, fingerprint: str, row: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as out:
            out.write(json.dumps({"fingerprint": fingerprint, "row": row}) + "\n")
            out.flush()
            os.fsync(out.fileno())
        self.rows[fingerprint] = row

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass
class _Window:
    """Counters of one window of env steps (meta-optimizer and bound inputs)."""

    requests: int = 0
    hits: int = 0
    semantic_hits: int = 0
    distance_sum: float = 0.0
    kls: list[float] = field(default_factory=list)
    similarities: list[float] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)


def run_cell(cfg: ExperimentConfig, bench: CacheBenchConfig, label: str = "cache benchmark") -> dict[str, Any]:
    """Play `bench.steps` env steps acting by the served prior; the cell's metrics and windows.

    While it takes long, a progress line named `label` every 30 s.
    """
    import ray

    from priorcache.envs.registry import env_config, make_env
    from priorcache.platform.cache.kl_bound import KLBoundEstimator, measured_kl_per_hit
    from priorcache.platform.cache.meta import CacheMetaOptimizer, MetaSignals
    from priorcache.platform.prior_client import cache_params, connect

    cache, pool = connect(cfg.prior)
    pool_before = ray.get(pool.stats.remote())
    env = make_env(env_config(cfg.env, cfg.prior, True, role="train"))
    client = env.get_wrapper_attr("prior_client")
    expert = ExpertAgreement(cfg.env.name) if cfg.env.name in FOLLOWING_EXPERTS else None
    meta = CacheMetaOptimizer(cfg.prior.cache.meta, cache_params(cfg.prior)) if cfg.prior.cache.meta.enabled else None
    bound = KLBoundEstimator()
    latencies, kls, flips, returns, wins, windows, changes = [], [], [], [], [], [], []
    hits = semantic_hits = episode = 0
    meta_s = 0.0
    window = _Window()
    evictions_before = 0
    started = time.perf_counter()
    progress = Progress(label, bench.steps, "env steps")
    try:
        obs, info = env.reset(seed=bench.seed)
        _record(info, window, latencies, kls, flips)
        if expert is not None:
            expert.reset(env, info, bench.seed)
        rng = np.random.default_rng(bench.seed)
        episode_return = 0.0
        for step in range(1, bench.steps + 1):
            k = int(obs["action_mask"].sum())
            candidates = env.get_wrapper_attr("candidates")
            if expert is not None:
                expert.observe(candidates, obs["prior_logp"], info)
            prior = np.exp(obs["prior_logp"][:k].astype(np.float64))
            action = int(rng.choice(k, p=prior / prior.sum()))
            if expert is not None:
                expert.played(candidates[action])
            obs, reward, terminated, truncated, info = env.step(action)
            episode_return += float(reward)
            _record(info, window, latencies, kls, flips)
            progress(step, f"{len(latencies)} prior requests")
            if terminated or truncated:
                returns.append(episode_return)
                window.returns.append(episode_return)
                wins.append(episode_success(info))
                episode += 1
                obs, info = env.reset(seed=bench.seed + episode)
                _record(info, window, latencies, kls, flips)
                if expert is not None:
                    expert.reset(env, info, bench.seed + episode)
                rng = np.random.default_rng(bench.seed + episode)
                episode_return = 0.0
            if step % bench.window == 0 or step == bench.steps:
                hits += window.hits
                semantic_hits += window.semantic_hits
                predicted = bound.bound(window.distance_sum, window.hits)
                kl_semantic = float(np.mean(window.kls)) if window.kls else None
                windows.append({
                    "env_steps": step, "cache_hit_rate": window.hits / max(window.requests, 1),
                    "prior_kl_bound": predicted, "audits": len(window.kls),
                    "prior_kl_audit": None if kl_semantic is None else
                    measured_kl_per_hit(kl_semantic, window.semantic_hits, window.hits),
                })
                bound.add_audits(window.kls, window.similarities)
                bound.end_window()
                if meta is not None:
                    t0 = time.perf_counter()
                    stats = ray.get(cache.stats.remote())
                    update = meta.step(MetaSignals(
                        hit_rate=window.hits / max(window.requests, 1), kl_semantic=kl_semantic,
                        audits=len(window.kls), lookups=window.requests,
                        evictions=int(stats["evictions"]) - evictions_before, size=int(stats["size"]),
                        return_mean=float(np.mean(window.returns)) if window.returns else float("nan"),
                        td_error=None))
                    evictions_before = int(stats["evictions"])
                    if update.changes:
                        ray.get(cache.set_params.remote(**{n: new for n, (_, new) in update.changes.items()}))
                        changes.append({"env_steps": step, **{n: list(v) for n, v in update.changes.items()},
                                        "reasons": update.reasons})
                    meta_s += time.perf_counter() - t0
                windows[-1].update({"cache_threshold": (meta.params if meta else cache_params(cfg.prior)).threshold})
                window = _Window()
        late = client.finish_audits(bench.audit_wait_s)
        kls.extend(a.kl for a in late)
        flips.extend(float(a.flip) for a in late)
    finally:
        env.close()
        if expert is not None:
            expert.close()
    wall_s = time.perf_counter() - started
    pool_after = ray.get(pool.stats.remote())
    stats = ray.get(cache.stats.remote())
    requests = len(latencies)
    return {
        "prior_model": client.guard_ids[0],
        **{k: pool_after[k] - pool_before[k] for k in ("llm_queries", "llm_proposals")},
        "prior_requests": requests,
        "cache_hit_rate": hits / requests if requests else 0.0,
        "prior_latency_ms_p50": float(np.percentile(latencies, 50)),
        "prior_latency_ms_p95": float(np.percentile(latencies, 95)),
        "prior_kl_audit": measured_kl_per_hit(float(np.mean(kls)), semantic_hits, hits) if kls else
        (0.0 if semantic_hits == 0 else None),
        "prior_kl_audit_semantic": float(np.mean(kls)) if kls else None,
        "audits": len(kls),
        "argmax_flip_rate": float(np.mean(flips)) if flips else None,
        "semantic_hits": semantic_hits,
        "remapped_hits": int(stats["remapped_hits"]),
        "episode_return_mean": float(np.mean(returns)) if returns else None,
        # None where the env reports no success (MuJoCo locomotion), as the results tables expect.
        "success_rate": None if not wins or np.isnan(wins).any() else float(np.mean(wins)),
        "expert_agreement": None if expert is None else expert.rate,
        "expert_labels": 0 if expert is None else expert.labelled,
        "episodes": len(returns),
        "env_steps": bench.steps,
        "wall_time_s": wall_s,
        "meta_overhead_frac": meta_s / wall_s,
        "cache_threshold": stats["threshold"],
        "cache_size": stats["size"],
        "final_params": {k: stats[k] for k in ("threshold", "capacity", "refresh", "temperature")},
        "param_changes": changes,
        "windows": windows,
    }


def _record(info: dict[str, Any], window: _Window, latencies: list[float], kls: list[float],
            flips: list[float]) -> None:
    """Count one served prior (the info of the observation it was served for)."""
    source = info.get("prior_source")
    if source is None:
        return
    latencies.append(info["prior_latency_ms"])
    window.requests += 1
    if source in HIT_SOURCES:
        window.hits += 1
        if not info["prior_exact"]:
            window.semantic_hits += 1
            window.distance_sum += 1.0 - info["prior_similarity"]
    window.kls.extend(info["prior_audits"])
    window.similarities.extend(info["prior_audit_similarities"])
    kls.extend(info["prior_audits"])
    flips.extend(float(f) for f in info["prior_audit_flips"])


def _ratio(base: float | None, value: float | None) -> float | None:
    if base is None or value is None or value == 0:
        return None
    return base / value


def _retention(base: float | None, value: float | None) -> float | None:
    if base is None or value is None or base == 0:
        return None
    return value / base


def best_static(rows: list[dict[str, Any]], kl_budget: float) -> dict[str, Any] | None:
    """The static threshold with the most query reduction among those within the KL budget
    (the lowest-KL one when none is); the row is re-labelled `static`."""
    static = [r for r in rows if r["policy"].startswith(STATIC_PREFIX)]
    if not static:
        return None
    within = [r for r in static if r["prior_kl_audit"] is not None and r["prior_kl_audit"] <= kl_budget]
    pick = min(within, key=lambda r: r["llm_queries"]) if within else \
        min(static, key=lambda r: (r["prior_kl_audit"] is None, r["prior_kl_audit"] or 0.0))
    return {**pick, "policy": "static", "static_choice": pick["policy"]}


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Ratios against the uncached row of the same env, in place."""
    base = next(r for r in rows if r["policy"] == "uncached")
    for row in rows:
        row["query_reduction"] = _ratio(base["llm_queries"], row["llm_queries"])
        row["latency_p50_reduction"] = _ratio(base["prior_latency_ms_p50"], row["prior_latency_ms_p50"])
        row["latency_p95_reduction"] = _ratio(base["prior_latency_ms_p95"], row["prior_latency_ms_p95"])
        row["return_retention"] = _retention(base["episode_return_mean"], row["episode_return_mean"])
        row["success_retention"] = _retention(base["success_rate"], row["success_rate"])
        row["expert_agreement_retention"] = _retention(base.get("expert_agreement"), row.get("expert_agreement"))


def run_bench(bench: CacheBenchConfig, base_dir: Path, command: str, fresh: bool = False,
              only: list[str] | None = None) -> Path | None:
    """Run every cell, write json/md/png; returns the markdown path.

    All policies of one env run in one invocation, side by side. Rows of envs this invocation
    did not run (`--envs`) are kept from the existing JSON, each with the command that made it.
    Cells an interrupted invocation finished with the same settings are kept (unless `fresh`),
    and so are cells another invocation records while this one runs. With `only` (policy
    names) just those cells run and are recorded, no report is written (returns None): a
    second invocation can run some policies beside the first one, on other cores.
    """
    from priorcache.cache_bench_report import write_report
    from priorcache.experiment import init_ray, preflight
    from priorcache.envs.registry import register

    stamp = time.strftime("%Y%m%d%H%M%S")
    cells = {(e, p): experiment_for(bench, base_dir, e, p, stamp) for e in bench.envs for p in bench.policies}
    resolved = {}
    for env_name in bench.envs:  # resolve each env once (game generation), before Ray starts
        env_cfg = preflight(cells[(env_name, "uncached")]).env
        for policy in bench.policies:
            resolved[(env_name, policy)] = replace(cells[(env_name, policy)], env=env_cfg)
    log = CellLog(bench.output, fresh)
    fingerprints = {cell: cell_fingerprint(bench, base_dir, *cell) for cell in resolved}
    if only:
        resolved = {cell: cfg for cell, cfg in resolved.items() if cell[1] in only}
    if any(fingerprints[cell] not in log.rows for cell in resolved):
        init_ray(resolved[next(iter(resolved))].ray)
        register()
    rows: list[dict[str, Any]] = []
    for (env_name, policy), cfg in resolved.items():
        log.refresh()
        kept = log.rows.get(fingerprints[(env_name, policy)])
        if kept is not None:
            print(f"[{env_name} / {policy}] recorded earlier, kept ({log.path})", flush=True)
            rows.append(kept)
            continue
        print(f"[{env_name} / {policy}] {bench.steps} env steps ...", flush=True)
        row = {"env": env_name, "policy": policy, "command": command, **run_cell(cfg, bench, f"[{env_name} / {policy}]")}
        log.append(fingerprints[(env_name, policy)], row)
        print(f"[{env_name} / {policy}] LLM queries {row['llm_queries']} of {row['prior_requests']} requests, "
              f"hit rate {row['cache_hit_rate']:.1%}, prior p50 {row['prior_latency_ms_p50']:.1f} ms, "
              f"{row['wall_time_s']:.0f} s", flush=True)
        rows.append(row)
    if only:
        print(f"cells of {', '.join(only)} recorded in {log.path}; the same command without --policies "
              "writes the report", flush=True)
        return None
    kl_budget = next(iter(resolved.values())).prior.cache.meta.kl_budget
    table: list[dict[str, Any]] = []
    for env_name in bench.envs:
        env_rows = [r for r in rows if r["env"] == env_name]
        chosen = best_static(env_rows, kl_budget)
        env_rows += [chosen] if chosen else []
        add_ratios(env_rows)
        table += env_rows
    previous = Path(bench.output).with_suffix(".json")
    if previous.is_file():
        table += [r for r in json.loads(previous.read_text()) if r["env"] not in bench.envs]
    report = write_report(table, bench, Path(bench.output))
    log.remove()
    return report


def main_cli(config: str, envs: list[str], steps: int | None, fresh: bool = False,
             policies: list[str] | None = None) -> Path | None:
    """What `priorcache bench cache-policies` runs."""
    bench, base_dir = load_bench(config, envs, steps)
    unknown = [name for name in policies or [] if name not in bench.policies]
    if unknown:
        raise ConfigError(f"--policies: {unknown} not in {config}; choose from {', '.join(bench.policies)}")
    if policies and fresh:
        raise ConfigError("--fresh with --policies would delete the cells other invocations recorded; "
                          "use --fresh on the full command only")
    command = " ".join(["priorcache bench cache-policies", *(a for a in sys.argv[3:] if a != "--fresh")])
    return run_bench(bench, base_dir, command, fresh, policies)
