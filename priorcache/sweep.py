"""`priorcache sweep SWEEP.yaml`: a Ray Tune sweep over cache policies, tracked in MLflow.

A sweep (see `experiments/sweeps/cache_policies.yaml`) names one experiment YAML (`base`),
overrides applied to every trial, and *policies*: a name -> dotted overrides of the
experiment config (`uncached: {prior.cache.mode: "off"}`). An optional `search` grid over
further keys is crossed with the policies; one trial = one policy x one grid point. Every
trial config is built and validated before Ray starts: a bad key in any policy fails the
whole sweep up front, naming the policy.

Each trial is `run_experiment` (the same code as `priorcache run`) inside a Tune function
trainable, reporting DESIGN.md's metrics to Tune after every iteration; the scheduler
(`asha`, `pbt` or `fifo`) ranks trials by `metric`. MLflow: the driver opens a parent run
(experiment = the sweep's name, on the base config's tracking store) and every trial is its
own child run, created by `run_experiment`'s `RunTracker` (params = the full resolved config,
per-iteration metrics, artifacts), tagged `sweep`, `policy`, `grid_point`, `trial_id` and
`mlflow.parentRunId`, so the UI nests the trials under the sweep. Tune's
`MLflowLoggerCallback` is deliberately not used: it would log every trial a second time, as a
run with only the Tune-reported metrics and no params or artifacts.

Where things live (Tune and the trials): `share_cache: true` gives the trials of one policy
one cache namespace (`<name>.<policy>`, plus the grid point's `prior.cache.*` values when the
grid changes cache settings), and the driver creates those cache actors so they outlive
single trials: a later trial of a policy starts from the entries earlier ones paid for.
`false` gives each trial its own namespace. Tune schedules a trial in a placement group
and captures every actor the trial starts into it. A trial's group holds its env runners
(1 CPU each, in the bundles RLlib expects) and no CPU for the trial actor itself: on 2 cores
a 1-CPU trial plus its env runner and LLM replica would never be scheduled. The LLM pool
runs outside the group (captured, a replica took an env runner's bundle and the runner
waited forever), so its replicas' CPUs must be free beside the groups: with
`max_concurrent_trials: 1` each trial starts its own pool (its `llm_queries` are its own, and
the pool ends with the trial); with more, the driver starts one pool shared by all trials
(a trial-owned pool would die with the first trial to end under the others) and
`llm_queries` then counts the queries of every trial so far.
Tune's trial-directory `chdir` is turned off so relative paths (game and model caches) mean
what they mean for `priorcache run`.

Schedulers: `asha` stops trials whose `metric` trails at its rungs (`grace_period`, then
x4); trials that reach `train.iterations` end on their own, after their evaluation and
MLflow bookkeeping. `pbt` may only perturb `search` keys, every `perturbation_interval`
iterations; but PBT exploits by cloning a better trial's checkpoint and `run_experiment`
resumes only its own run folder (`resume=`), not another trial's checkpoint, so trials report
none and Tune skips every exploit step (it logs "no checkpoint for trial"): today a pbt sweep
ranks trials like fifo. `fifo` runs every trial
to the end.

At the end the driver prints one row per trial (policy, grid point, status, iterations,
`metric`, llm_queries, cache_hit_rate, prior_kl_audit: the last reported iteration's values;
held-out evaluation results are in each trial's MLflow run and summary.json), writes it to
`<output_dir>/sweeps/<name>/results.csv` (beside Tune's experiment folder) and logs the CSV
to the parent run. A trial that fails is a row with its error; the others go on; the command
exits 1 if any trial failed. A trial stopped by the scheduler is a row with status
`stopped early`, and its MLflow run is closed as KILLED.

How to run:
    priorcache sweep experiments/sweeps/cache_policies.yaml --dry-run   # the trials, no Ray
    priorcache sweep experiments/sweeps/cache_policies.yaml             # run them
    priorcache ui                                                       # browse the nested runs

Results to expect: see the header of `experiments/sweeps/cache_policies.yaml` (six policies
on the small TextWorld game: the uncached policy pays one LLM query per prior request, every
cached policy a few dozen; the table shows it beside return and audited KL).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import numbers
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from priorcache.eval_suite import format_cell
from priorcache.platform.config import (
    ConfigError,
    ExperimentConfig,
    TrackingConfig,
    flatten,
    load_config,
    read_yaml_as_text,
)

SCHEDULERS = ("asha", "pbt", "fifo")
MODES = ("max", "min")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SWEEP_KEYS = ("name", "prior.cache.namespace", "tracking.experiment")
"""Experiment keys the sweep sets itself (run names, cache namespaces, MLflow experiment)."""
_DRIVER_PREFIXES = ("tracking.", "ray.")
"""Keys only `overrides` may set: the parent run and the trials share one store and one Ray."""
_ASHA_REDUCTION = 4
_TRIAL_ACTOR_MEMORY = 2**20
"""Bytes bundle 0 reserves: a placement group's first bundle must reserve something, and a
CPU there would starve the trial's own env runner and replica on a 2-core machine."""


@dataclass(frozen=True)
class SweepConfig:
    """A sweep over cache policies (and optionally a grid), as written in its YAML."""

    name: str = MISSING
    """Sweep name: MLflow experiment, Tune experiment folder, prefix of run names and namespaces."""
    base: str = MISSING
    """Experiment YAML every trial starts from (relative to the sweep YAML; absolute once loaded)."""
    overrides: list[str] = field(default_factory=list)
    """`key=value` overrides applied to every trial (budgets, output_dir, tracking, ray)."""
    metric: str = "episode_return_mean"
    """DESIGN.md metric the scheduler ranks trials by."""
    mode: str = "max"
    """`max` or `min` of `metric`."""
    scheduler: str = "asha"
    """`asha` (stop trailing trials early), `pbt` (perturb `search` keys) or `fifo` (run all)."""
    grace_period: int = 1
    """asha: iterations every trial runs before it may be stopped (<= train.iterations)."""
    perturbation_interval: int = 2
    """pbt: iterations between perturbations."""
    max_concurrent_trials: int = 1
    """Trials running at once (each needs its env runners' and, if > 1, not its replicas' CPUs)."""
    share_cache: bool = True
    """Trials of one policy share one cache actor (namespace `<name>.<policy>`); false: one per trial."""
    policies: dict[str, dict[str, str]] = field(default_factory=dict)
    """Policy name -> dotted overrides of the experiment config, e.g. {prior.cache.mode: exact}."""
    search: dict[str, list[str]] = field(default_factory=dict)
    """Optional grid: dotted key -> values; every point is crossed with every policy."""


@dataclass(frozen=True)
class TrialSpec:
    """One trial: a policy at one grid point, with its validated experiment config."""

    index: int
    """Position in the sweep's trial list (policies in YAML order, then grid points)."""
    policy: str
    point: tuple[tuple[str, str], ...]
    """The grid point: (key, value) in `search` order; empty without a grid."""
    overrides: tuple[str, ...]
    """The policy's and the grid point's overrides (the sweep's own come before them)."""
    namespace: str
    """Cache namespace of the trial."""
    config: ExperimentConfig

    @property
    def point_label(self) -> str:
        """`key=value,...` of the grid point ('' without a grid)."""
        return ",".join(f"{k}={v}" for k, v in self.point)

    @property
    def key(self) -> str:
        """Identifies the trial from a Tune config (`policy` and the search keys)."""
        return trial_key(self.policy, dict(self.point))


@dataclass(frozen=True)
class Sweep:
    """A loaded sweep: its config, the base experiment (with the sweep overrides) and the trials."""

    config: SweepConfig
    base: ExperimentConfig
    trials: tuple[TrialSpec, ...]
    path: Path
    """The sweep YAML."""

    @property
    def output_dir(self) -> Path:
        """`<output_dir>/sweeps`: Tune's storage path; the sweep's folder is `<this>/<name>`."""
        return Path(self.base.output_dir).resolve() / "sweeps"


@dataclass(frozen=True)
class SweepOutcome:
    """What a finished sweep produced."""

    rows: list[dict[str, Any]]
    csv_path: Path
    parent_run_id: str
    tracking_uri: str
    failed: int
    """Trials that raised or never ran."""


def trial_key(policy: str, point: dict[str, Any]) -> str:
    return json.dumps({"policy": policy, **{k: str(v) for k, v in point.items()}}, sort_keys=True)


def load_sweep(path: str | Path) -> Sweep:
    """Read a sweep YAML, build every trial's config and validate all of them (no Ray)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep file {path} does not exist: pass a YAML like experiments/sweeps/cache_policies.yaml")
    try:
        raw = read_yaml_as_text(path)
    except Exception as err:  # yaml's parser errors have no common public base class
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    try:
        schema = OmegaConf.structured(SweepConfig)
        OmegaConf.set_readonly(schema, False)  # frozen dataclass: the schema itself is read-only
        cfg: SweepConfig = OmegaConf.to_object(OmegaConf.merge(schema, raw))  # type: ignore[assignment]
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        hint = (" (policies map a name to dotted overrides, e.g. exact: {prior.cache.mode: exact})"
                if str(key).startswith("policies") else
                " (search maps a dotted key to a list of values, e.g. prior.cache.capacity: [200, 1000])"
                if str(key).startswith("search") else "")
        raise ConfigError(f"sweep key {key!r}: {str(err).strip().splitlines()[0]}{hint}") from err
    base_path = (path.parent / cfg.base).resolve()
    cfg = SweepConfig(**{**asdict(cfg), "base": str(base_path)})
    _check_fields(cfg)
    if not base_path.is_file():
        raise ConfigError(f"sweep key 'base': {base_path} does not exist; give an experiment YAML, "
                          "relative to the sweep file (e.g. ../textworld_ppo_prior.yaml)")
    try:
        base = load_config(base_path, cfg.overrides)
    except ConfigError as err:
        raise ConfigError(f"sweep key 'overrides' (or base {cfg.base}): {err}") from err
    trials = tuple(_build_trials(cfg))
    shortest = min(t.config.train.iterations for t in trials)
    if cfg.scheduler == "asha" and cfg.grace_period > shortest:
        raise ConfigError(f"sweep key 'grace_period' is {cfg.grace_period} but a trial runs only {shortest} "
                          "train.iterations; lower it or raise train.iterations in 'overrides'")
    return Sweep(cfg, base, trials, path)


def _check_fields(cfg: SweepConfig) -> None:
    from priorcache.metrics import METRIC_NAMES

    if not _NAME.match(cfg.name):
        raise ConfigError(f"sweep key 'name' is {cfg.name!r}; use letters, digits, '.', '_' and '-' only")
    for key, value, choices in (("scheduler", cfg.scheduler, SCHEDULERS), ("mode", cfg.mode, MODES),
                                ("metric", cfg.metric, METRIC_NAMES)):
        if value not in choices:
            raise ConfigError(f"sweep key {key!r} is {value!r}; choose one of {', '.join(choices)}")
    for key in ("grace_period", "perturbation_interval", "max_concurrent_trials"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"sweep key {key!r} must be >= 1, got {getattr(cfg, key)}")
    if not cfg.policies:
        raise ConfigError("sweep key 'policies' is empty: name at least one policy, "
                          "e.g. policies: {exact: {prior.cache.mode: exact}}")
    for policy, overrides in cfg.policies.items():
        if not _NAME.match(policy):
            raise ConfigError(f"sweep key 'policies': policy name {policy!r} may use letters, digits, "
                              "'.', '_' and '-' only (it names runs and cache namespaces)")
        _check_keys(f"policy {policy!r}", overrides)
    _check_keys("sweep key 'search'", cfg.search)
    for key, values in cfg.search.items():
        if not values:
            raise ConfigError(f"sweep key 'search.{key}' is an empty list; give at least one value")
        shared = [p for p, o in cfg.policies.items() if key in o]
        if shared:
            raise ConfigError(f"sweep key 'search.{key}' is also set by policy {shared[0]!r}; "
                              "set each key in policies or in search, not both")
    for item in cfg.overrides:
        key = item.split("=", 1)[0].strip()
        if key in _SWEEP_KEYS:
            raise ConfigError(f"sweep key 'overrides': {key!r} is set by the sweep for every trial; remove it")
    if cfg.scheduler == "pbt" and not cfg.search:
        raise ConfigError("sweep key 'scheduler' is pbt but 'search' is empty: PBT only perturbs search "
                          "keys; add a search grid or use asha/fifo")


def _check_keys(owner: str, overrides: dict[str, Any]) -> None:
    for key in overrides:
        if key in _SWEEP_KEYS or key.startswith(_DRIVER_PREFIXES):
            raise ConfigError(f"{owner} sets {key!r}, which the sweep decides for all trials; remove it "
                              "(tracking and ray settings belong in the sweep's 'overrides')")


def expand(cfg: SweepConfig) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """(policy, grid point) of every trial: policies in YAML order, each crossed with the grid."""
    keys = list(cfg.search)
    points = [tuple(zip(keys, values)) for values in itertools.product(*(cfg.search[k] for k in keys))]
    return [(policy, point) for policy in cfg.policies for point in points]


def namespace(cfg: SweepConfig, policy: str, point: tuple[tuple[str, str], ...], index: int) -> str:
    """The trial's cache namespace; see the module docstring."""
    if not cfg.share_cache:
        return f"{cfg.name}.{policy}.trial{index}"
    cache_point = [(k, v) for k, v in point if k.startswith("prior.cache.")]
    # Trials sharing an actor share its parameters too: a grid over cache settings needs one per value.
    return f"{cfg.name}.{policy}" + "".join(f".{_slug(k.rsplit('.', 1)[-1])}-{_slug(v)}" for k, v in cache_point)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def _build_trials(cfg: SweepConfig) -> list[TrialSpec]:
    trials = []
    for index, (policy, point) in enumerate(expand(cfg)):
        own = tuple(f"{k}={v}" for k, v in (*cfg.policies[policy].items(), *point))
        ns = namespace(cfg, policy, point, index)
        run_name = f"{cfg.name}-{policy}" + "".join(f"-{_slug(k.rsplit('.', 1)[-1])}{_slug(v)}" for k, v in point)
        fixed = [f"prior.cache.namespace={ns}", f"tracking.experiment={cfg.name}", f"name={run_name}"]
        try:
            config = load_config(cfg.base, [*cfg.overrides, *own, *fixed])
        except ConfigError as err:
            where = f" at grid point {','.join(f'{k}={v}' for k, v in point)}" if point else ""
            raise ConfigError(f"policy {policy!r}{where}: {err}") from err
        trials.append(TrialSpec(index, policy, point, own, ns, config))
    return trials


def format_trials(sweep: Sweep) -> str:
    """The trial list `--dry-run` prints."""
    c = sweep.config
    lines = [f"sweep {c.name}: {len(sweep.trials)} trials ({len(c.policies)} policies"
             + (f" x {len(sweep.trials) // len(c.policies)} grid points" if c.search else "")
             + f"), scheduler {c.scheduler} on {c.metric} ({c.mode}), base {c.base}",
             f"every trial: {' '.join(c.overrides) or '(no overrides)'}",
             f"MLflow experiment {c.name}; Tune folder {sweep.output_dir / c.name}"]
    width = max(len(t.policy) for t in sweep.trials)
    for t in sweep.trials:
        point = f" [{t.point_label}]" if t.point else ""
        lines.append(f"{t.index + 1:>3}. {t.policy:<{width}}{point}  cache namespace {t.namespace}  "
                     f"overrides: {' '.join(t.overrides) or '(none)'}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- running


def run_sweep(sweep: Sweep, log: Callable[[str], None] = print) -> SweepOutcome:
    """Run every trial under Tune (see the module docstring); returns the table and where it went."""
    from priorcache.algorithms.registry import uses_prior
    from priorcache.experiment import init_ray, preflight
    from priorcache.platform.tracking import RunTracker, tracking_uri

    c = sweep.config
    checked: set[str] = set()
    for trial in sweep.trials:  # bad games or model files fail here, before Ray and Tune
        key = json.dumps([asdict(trial.config.env), trial.config.prior.llm.model_path], sort_keys=True)
        if key not in checked:
            preflight(trial.config)
            checked.add(key)
    # The base config's store, as the trials see it (an empty uri means the same default store
    # and artifact folder for the parent as for the trials, whose cwd is the driver's).
    tracking = TrackingConfig(uri=sweep.base.tracking.uri, experiment=c.name)
    init_ray(sweep.base.ray)
    held = _driver_owned_actors(sweep, uses_prior)  # noqa: F841 (the actors live while these handles do)
    folder = sweep.output_dir / c.name
    folder.mkdir(parents=True, exist_ok=True)
    params = flatten({k: (v if isinstance(v, (dict, str, int, float, bool)) else json.dumps(v))
                      for k, v in asdict(c).items()})
    with RunTracker(tracking, c.name, params) as tracker:
        tracker.set_tags({"sweep": c.name, "sweep_file": str(sweep.path.resolve()), "trials": str(len(sweep.trials))})
        tracker.log_artifact(sweep.path)
        results = _tune(sweep, tracker.run_id, folder.parent)
        rows = _rows(sweep, results)
        _close_child_runs(tracking_uri(tracking), tracker.experiment_id, tracker.run_id, rows)
        csv_path = folder / "results.csv"
        write_rows(csv_path, rows, c.metric)
        tracker.log_artifact(csv_path)
        failed = sum(r["status"] in ("error", "not run") for r in rows)
        tracker.set_tags({"trials_failed": str(failed)})
    log(format_table(rows, c.metric))
    log(f"results.csv : {csv_path}\nMLflow      : parent run {tracker.run_id} in experiment {c.name} "
        f"({tracking_uri(tracking)}); browse with `priorcache ui`")
    return SweepOutcome(rows, csv_path, tracker.run_id, tracking_uri(tracking), failed)


def _driver_owned_actors(sweep: Sweep, uses_prior: Callable[[ExperimentConfig], bool]) -> list[Any]:
    """Shared cache actors (and, with concurrent trials, LLM pools) owned by the driver.

    A named actor dies with the process that created it; created by a trial, it would die
    when that trial ends, under the trials that share it.
    """
    from priorcache.platform.cache.actor import get_or_create_cache_actor
    from priorcache.platform.embed import EMBEDDING_DIM
    from priorcache.platform.llm.pool import get_or_create_pool
    from priorcache.platform.prior_client import cache_params

    handles: list[Any] = []
    prior_trials = [t for t in sweep.trials if uses_prior(t.config)]
    if sweep.config.share_cache:
        for t in {t.namespace: t for t in prior_trials}.values():
            handles.append(get_or_create_cache_actor(t.namespace, cache_params(t.config.prior), EMBEDDING_DIM))
    if sweep.config.max_concurrent_trials > 1:
        for t in {json.dumps(asdict(t.config.prior.llm), sort_keys=True): t for t in prior_trials}.values():
            handles.append(get_or_create_pool(t.config.prior.llm))
    return handles


def trial_bundles(trial: TrialSpec) -> list[dict[str, float]]:
    """Placement-group bundles of a trial, laid out as RLlib expects inside a group.

    Bundle 0 is the trial actor (the RLlib driver and local learner): memory only, no CPU,
    because on 2 cores 1 CPU here plus an env runner and a replica would never fit. Bundles
    1..n are the env runners (RLlib places runner i in bundle i). The LLM pool is started
    outside the group (see `run_trial`): a replica captured into it took an env runner's
    bundle and the runner waited forever.
    """
    return [{"memory": float(_TRIAL_ACTOR_MEMORY)}] + [{"CPU": 1.0}] * trial.config.train.num_env_runners


def _tune(sweep: Sweep, parent_run_id: str, storage: Path) -> Any:
    from ray import tune

    c = sweep.config
    trials = {t.key: t for t in sweep.trials}

    def resources(config: dict[str, Any]) -> tune.PlacementGroupFactory:
        return tune.PlacementGroupFactory(trial_bundles(trials[_config_key(config, c)]))

    trainable = tune.with_resources(
        tune.with_parameters(run_trial, trials=trials, search_keys=tuple(c.search), sweep_name=c.name,
                             metric=c.metric, parent_run_id=parent_run_id,
                             own_pool=c.max_concurrent_trials == 1),
        resources,
    )
    param_space = {"policy": tune.grid_search(list(c.policies)),
                   **{k: tune.grid_search(list(v)) for k, v in c.search.items()}}
    scheduler = make_scheduler(c, max(t.config.train.iterations for t in sweep.trials))
    tune_config = tune.TuneConfig(scheduler=scheduler, max_concurrent_trials=c.max_concurrent_trials,
                                  **({"metric": c.metric, "mode": c.mode} if c.scheduler == "fifo" else {}))
    run_config = tune.RunConfig(name=c.name, storage_path=str(storage), verbose=1,
                                failure_config=tune.FailureConfig(max_failures=0))
    previous = os.environ.get("RAY_CHDIR_TO_TRIAL_DIR")
    os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"  # propagated by Tune to its trial actors
    try:
        return tune.Tuner(trainable, param_space=param_space, tune_config=tune_config, run_config=run_config).fit()
    finally:
        if previous is None:
            os.environ.pop("RAY_CHDIR_TO_TRIAL_DIR", None)
        else:
            os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = previous


def make_scheduler(cfg: SweepConfig, iterations: int) -> Any:
    """The Tune scheduler the sweep names."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

    if cfg.scheduler == "asha":
        # stop_last_trials=False: a trial at max_t ends by itself; stopping it there would kill
        # it in the middle of its evaluation and leave its MLflow run open.
        return ASHAScheduler(metric=cfg.metric, mode=cfg.mode, max_t=iterations, grace_period=cfg.grace_period,
                             reduction_factor=_ASHA_REDUCTION, stop_last_trials=False)
    if cfg.scheduler == "pbt":
        return PopulationBasedTraining(metric=cfg.metric, mode=cfg.mode,
                                       perturbation_interval=cfg.perturbation_interval,
                                       hyperparam_mutations={k: list(v) for k, v in cfg.search.items()})
    return FIFOScheduler()


def _config_key(config: dict[str, Any], cfg: SweepConfig) -> str:
    return trial_key(config["policy"], {k: config[k] for k in cfg.search})


def run_trial(config: dict[str, Any], trials: dict[str, TrialSpec], search_keys: tuple[str, ...],
              sweep_name: str, metric: str, parent_run_id: str, own_pool: bool) -> None:
    """The Tune function trainable: one `run_experiment`, reporting every iteration to Tune.

    With `own_pool` it first starts the trial's LLM pool outside the trial's placement group
    (Tune would capture it and its replicas into the group, where a replica can take the
    bundle RLlib reserved for an env runner); `run_experiment` then finds it by name. The
    pool is this trial's, so its `llm_queries` are, and it ends with the trial.
    """
    from ray import tune

    from priorcache.algorithms.registry import uses_prior
    from priorcache.experiment import run_experiment

    trial = trials[trial_key(config["policy"], {k: config[k] for k in search_keys})]
    pool = _start_pool_outside_group(trial.config) if own_pool and uses_prior(trial.config) else None  # noqa: F841

    def report(iteration: int, metrics: dict[str, float]) -> None:
        values = {k: float(v) for k, v in metrics.items()
                  if isinstance(v, numbers.Real) and math.isfinite(float(v))}
        values.setdefault(metric, math.nan)  # Tune rejects a result without the scheduler's metric
        values["iteration"] = float(iteration)
        tune.report(values)

    tags = {"sweep": sweep_name, "policy": trial.policy, "grid_point": trial.point_label,
            "trial_id": tune.get_context().get_trial_id(), "mlflow.parentRunId": parent_run_id}
    run_experiment(trial.config, on_iteration=report, tags=tags)


def _start_pool_outside_group(cfg: ExperimentConfig) -> Any:
    """The trial's LLM pool, scheduled as if no placement group were around (nor for its replicas)."""
    from priorcache.platform.cache.actor import RAY_NAMESPACE
    from priorcache.platform.llm.pool import ReplicaPool, pool_actor_name

    return ReplicaPool.options(name=pool_actor_name(cfg.prior.llm), namespace=RAY_NAMESPACE, get_if_exists=True,
                               scheduling_strategy="DEFAULT").remote(cfg.prior.llm)


# ----------------------------------------------------------------------------- results


def columns(metric: str) -> tuple[str, ...]:
    """CSV columns; the ranking metric's column is named after it."""
    return tuple(dict.fromkeys(("trial", "policy", "grid_point", "status", "iterations", metric, "llm_queries",
                                "cache_hit_rate", "prior_kl_audit", "mlflow_run_id", "trial_id", "error")))


def _rows(sweep: Sweep, results: Any) -> list[dict[str, Any]]:
    by_key: dict[str, Any] = {}
    for result in results:
        by_key[_config_key(result.config, sweep.config)] = result
    rows = []
    for t in sweep.trials:
        row: dict[str, Any] = {"trial": t.index + 1, "policy": t.policy, "grid_point": t.point_label,
                               "mlflow_run_id": "", "trial_id": "", "error": ""}
        result = by_key.get(t.key)
        metrics = (result.metrics or {}) if result is not None else {}
        iterations = int(metrics.get("iteration", 0))
        if result is None:
            row["status"] = "not run"
        elif result.error is not None:
            row.update(status="error", error=_error_line(result.error))
        elif iterations < t.config.train.iterations:
            row["status"] = "stopped early"
        else:
            row["status"] = "finished"
        row["iterations"] = iterations
        row["trial_id"] = metrics.get("trial_id", "")
        for name in (sweep.config.metric, "llm_queries", "cache_hit_rate", "prior_kl_audit"):
            value = metrics.get(name, math.nan)
            row[name] = float(value) if isinstance(value, numbers.Real) else math.nan
        rows.append(row)
    return rows


def _error_line(err: BaseException) -> str:
    """The original exception's last line (Tune wraps it in RayTaskError with a traceback)."""
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    text = lines[-1].strip() if lines else repr(err)
    return text[:300]


def _close_child_runs(uri: str, experiment_id: str, parent_run_id: str, rows: list[dict[str, Any]]) -> None:
    """Fill `mlflow_run_id` and close child runs a stopped or killed trial left RUNNING."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    children = client.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
                                  max_results=10_000)
    # Matched by (policy, grid point): a trial that failed before its first report has no trial_id row.
    by_trial = {(run.data.tags.get("policy"), run.data.tags.get("grid_point")): run for run in children}
    for row in rows:
        run = by_trial.get((row["policy"], row["grid_point"]))
        if run is None:
            continue
        row["mlflow_run_id"] = run.info.run_id
        row["trial_id"] = row["trial_id"] or run.data.tags.get("trial_id", "")
        client.set_tag(run.info.run_id, "sweep_status", row["status"])
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, status="KILLED" if row["status"] == "stopped early" else "FAILED")


def write_rows(path: Path, rows: list[dict[str, Any]], metric: str) -> None:
    """Write the results CSV (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns(metric), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def format_table(rows: list[dict[str, Any]], metric: str) -> str:
    """The table printed at the end of a sweep (errors listed below it)."""
    header = ("#", "policy", "grid point", "status", "iters", metric, "LLM queries", "hit rate", "KL audit")
    body = [(str(r["trial"]), r["policy"], r["grid_point"] or "–", r["status"], str(r["iterations"]),
             format_cell(r[metric], ".3f"), format_cell(r["llm_queries"], ".0f"), format_cell(r["cache_hit_rate"], ".1%"),
             format_cell(r["prior_kl_audit"], ".4f")) for r in rows]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in (header, *body)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [f"trial {r['trial']} ({r['policy']}) failed: {r['error']}" for r in rows if r["error"]]
    return "\n".join(lines)

