"""Run one experiment end to end: game, Ray, prior service, RLlib training, evaluation, MLflow.

`run_experiment(config)` is what `priorcache run` and `ray job submit ... python -m
priorcache run` execute. Per iteration it logs DESIGN.md's metrics to MLflow and prints a
progress line; at the end it evaluates the trained policy and a random policy on held-out
seeds and writes `summary.json` into the run folder. Every metric is in the MLflow store the
moment it is logged, and `summary.json` and the cache's `cache_snapshot.npz` are written
(with `status`) even when a run fails or is interrupted. An interrupted run continues from
its last checkpoint with `resume=RUN_DIR` (`resume.py`). The cache's per-iteration work
(KL bound, meta-optimizer, warm start) is `platform/cache/controller.py`'s.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import ray
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core import (
    COMPONENT_LEARNER, COMPONENT_LEARNER_GROUP, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID,
)
from ray.rllib.core.rl_module.rl_module import RLModule

from priorcache.algorithms.registry import OFFLINE, algorithm_config, uses_prior
from priorcache.envs.continuous_env import CONTINUOUS_ENVS, make_continuous_env
from priorcache.envs.registry import (
    ROLES, env_config, make_continuous_rllib_env, make_env, make_text_env, register, resolve_env,
)
from priorcache.evaluation import (
    EvalResult, continuous_module_policy, continuous_random_policy, evaluate, module_policy, prior_policy,
    random_policy,
)
from priorcache.interrupt import interrupt_on_sigterm, was_interrupted
from priorcache.metrics import collect_iteration_metrics, progress_line
from priorcache.offline.dataset import dataset_dir, episodes_path
from priorcache.platform.cache.controller import CHANGE_LOG, SNAPSHOT, CacheController
from priorcache.platform.cache.persist import load_snapshot
from priorcache.platform.config import ExperimentConfig, RayConfig, flatten, to_dict, to_yaml
from priorcache.platform.llm.model_files import cache_dir_from_env, resolve_model_path
from priorcache.platform.llm.prompt_context import resolve_demos
from priorcache.platform.prior_client import connect
from priorcache.platform.run_plots import log_run_plots
from priorcache.platform.tracking import RunTracker, tracking_uri
from priorcache.resume import CHECKPOINT, ResumePoint, counter_offsets, load_resume_point, save_resume_point
from priorcache.videos import record_episodes

log = logging.getLogger("priorcache")


class ClusterError(RuntimeError):
    """Ray could not be reached at the configured address."""


@dataclass(frozen=True)
class RunOutcome:
    """Where a finished run put its results."""

    run_dir: Path
    summary_path: Path
    mlflow_run_id: str
    tracking_uri: str
    summary: dict[str, Any]


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on an unreachable head: `ray.init` itself retries for minutes."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"config key 'ray.address': {address!r} is not HOST:PORT (e.g. 127.0.0.1:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ClusterError(
            f"config key 'ray.address': nothing answers at {address} ({err}); start the head with "
            "`ray start --head`, fix the address, or leave it empty to start a local instance"
        ) from err


def init_ray(cfg: RayConfig) -> None:
    """Join `ray.address` (or RAY_ADDRESS), else start a local instance."""
    if ray.is_initialized():
        return
    address = cfg.address or os.environ.get("RAY_ADDRESS") or None
    if address is not None:
        check_reachable(address)
    # A local instance's workers get one thread per library unless a component pins more. On a
    # cluster the job's own runtime_env (working_dir, env vars) must stay as submitted.
    local = {"num_cpus": cfg.num_cpus or None, "runtime_env": {"env_vars": {
        "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}}}
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=True, **(local if address is None else {}))
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ClusterError(
            f"config key 'ray.address': cannot reach Ray at {address!r} ({err}); leave it empty to "
            "start a local instance, or give the head's address (e.g. 127.0.0.1:6379)"
        ) from err
    interrupt_on_sigterm()  # ray.init replaced it with an exit that skips interrupt handling


def check_resources(cfg: ExperimentConfig) -> None:
    """Env runners + LLM replicas must fit the cluster's CPUs, or sampling waits forever."""
    need = cfg.train.num_env_runners + (
        cfg.prior.llm.replicas * cfg.prior.llm.num_cpus_per_replica if uses_prior(cfg) else 0
    )
    have = ray.cluster_resources().get("CPU", 0)
    if need > have:
        raise ClusterError(
            f"config keys 'train.num_env_runners' and 'prior.llm.replicas' need {need:g} CPUs "
            f"(1 per env runner, 'prior.llm.num_cpus_per_replica' per replica) but Ray has {have:g}; "
            "lower them or add nodes"
        )


def preflight(cfg: ExperimentConfig, check_dataset: bool = True) -> ExperimentConfig:
    """Check the inputs Ray workers would trip over later, before Ray starts.

    Resolves the environment (generated games, absolute paths) and opens it once per role,
    checks an offline algorithm's dataset (unless `check_dataset` is false: it is being recorded),
    and assembles/validates the LLM file, so a bad game, split or model fails here with the
    config key named, not inside a remote actor. Returns `cfg` with the resolved env.
    """
    cfg = replace(cfg, env=resolve_env(cfg.env))
    if check_dataset and cfg.algorithm.name in OFFLINE:
        episodes_path(dataset_dir(cfg))  # DatasetError naming `offline.dataset` and the command
    if cfg.env.name in CONTINUOUS_ENVS:
        make_continuous_env(cfg.env).close()  # both roles play the same env (seeds differ)
    else:
        for role in ROLES:
            make_text_env(cfg.env, role).close()
    if uses_prior(cfg):
        if cfg.prior.llm.backend == "llama_cpp":
            # vLLM weights are checked by the replica, on the GPU node that reads them: the
            # driver may have neither the folder nor vLLM.
            resolve_model_path(cfg.prior.llm.model_path, cache_dir_from_env())
        llm = replace(cfg.prior.llm, demos=resolve_demos(cfg.prior.llm.demos))
        cfg = replace(cfg, prior=replace(cfg.prior, llm=llm))
    return cfg


def with_cache_snapshot(cfg: ExperimentConfig, run_dir: Path) -> ExperimentConfig:
    """`prior.cache.snapshot_path` made absolute (the cache actor's working directory is not the
    driver's); empty: `cache_snapshot.npz` in the run folder. A file already there must load."""
    path = Path(cfg.prior.cache.snapshot_path).resolve() if cfg.prior.cache.snapshot_path else run_dir / SNAPSHOT
    if path.is_file():
        load_snapshot(path, key="prior.cache.snapshot_path")
    cache = replace(cfg.prior.cache, snapshot_path=str(path))
    return replace(cfg, prior=replace(cfg.prior, cache=cache))


IterationHook = Callable[[int, dict[str, float]], None]
"""Called after every training iteration with (iteration, DESIGN.md metrics); Tune reports through it."""


def run_experiment(cfg: ExperimentConfig, on_iteration: IterationHook | None = None,
                   tags: dict[str, str] | None = None, resume: str | Path | None = None) -> RunOutcome:
    """Train and evaluate as `cfg` says; see the module docstring.

    `on_iteration` sees each iteration's metrics after they are logged (and the iteration's
    checkpoint, if one is due, saved); `tags` are added to the MLflow run (a sweep tags its
    trials with it). `resume` is the folder of an earlier run of the same config to continue
    from its last checkpoint, in its MLflow run (`resume.py`).
    """
    point = load_resume_point(cfg, resume) if resume is not None else None
    if point is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        run_dir = (Path(cfg.output_dir) / f"{cfg.name}-{stamp}").resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        run_dir = point.run_dir
    # A resumed run's wall time goes on from the time logged with its checkpoint.
    started = time.monotonic() - (point.metrics.get("wall_time_s", 0.0) if point is not None else 0.0)
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    summary: dict[str, Any] = {"status": "running", "name": cfg.name, "algorithm": cfg.algorithm.name}
    summary_path = run_dir / "summary.json"

    cfg = with_cache_snapshot(preflight(cfg), run_dir)
    summary["env"] = to_dict(cfg.env)
    init_ray(cfg.ray)
    check_resources(cfg)
    register()
    with RunTracker(cfg.tracking, cfg.name, flatten(to_dict(cfg)), point.mlflow_run_id if point else "") as tracker:
        tracker.set_tags({"run_dir": str(run_dir), **(tags or {})})
        summary["mlflow_run_id"] = tracker.run_id
        if point is not None:
            tracker.set_tags({"resumed_from_iteration": str(point.iteration)})
            summary["resumed_from_iteration"] = point.iteration
        tracker.log_artifact(run_dir / "config.yaml")
        try:
            summary.update(_train_and_evaluate(cfg, run_dir, tracker, started, on_iteration, point))
            summary["status"] = "finished"
        except BaseException as err:
            summary["status"] = "interrupted" if was_interrupted(err) else "failed"
            summary["error"] = repr(err)
            raise
        finally:
            _log_json(tracker, summary_path, summary)
            log_run_plots(tracker.run_id)  # never raises: cannot mask the run's own error
    return RunOutcome(run_dir, summary_path, tracker.run_id, tracking_uri(cfg.tracking), summary)


def _kill_env_runners(algo: Algorithm) -> None:
    """Kill the algorithm's remote env runners, busy or not. `algo.stop()` asks each runner to
    stop, and a runner answers only after its in-flight sample: on an interrupt that is minutes
    of LLM calls whose episodes nobody will log."""
    for group in (algo.env_runner_group, getattr(algo, "eval_env_runner_group", None)):
        if group is not None:
            group.reset([])


def _train_and_evaluate(cfg: ExperimentConfig, run_dir: Path, tracker: RunTracker, started: float,
                        on_iteration: IterationHook | None, point: ResumePoint | None) -> dict[str, Any]:
    cache, pool = connect(cfg.prior) if uses_prior(cfg) else (None, None)
    controller = CacheController(cfg.prior, cache, run_dir) if cache is not None else None
    # A resumed run's cache comes back from its own snapshot (`with_cache_snapshot`), not the warm start.
    if controller is not None and cfg.prior.cache.warm_start and point is None:
        entries = controller.warm_start()
        tracker.set_tags({"cache_warm_start": cfg.prior.cache.warm_start})
        print(f"cache warm start: {entries} entries from {cfg.prior.cache.warm_start}", flush=True)
    algo = algorithm_config(cfg).build_algo()
    offsets: dict[str, float] = {}
    if point is not None:
        algo.restore_from_path(str(point.checkpoint))
        offsets = counter_offsets(point, collect_iteration_metrics({}, cache, pool, 0.0, lifetime=True))
        print(f"resumed {run_dir.name} at iteration {point.iteration} (MLflow run {point.mlflow_run_id})", flush=True)

    def collect(result: dict[str, Any], lifetime: bool = False) -> dict[str, float]:
        metrics = collect_iteration_metrics(result, cache, pool, time.monotonic() - started, lifetime=lifetime)
        return {**metrics, **{k: metrics[k] + v for k, v in offsets.items() if k in metrics}}

    def checkpoint(iteration: int, metrics: dict[str, float]) -> None:
        algo.save_to_path(str(run_dir / CHECKPOINT))
        save_resume_point(run_dir, tracker.run_id, iteration, metrics)

    metrics: dict[str, float] = {}
    saved = point.iteration if point is not None else 0
    try:
        for iteration in range(saved + 1, cfg.train.iterations + 1):
            result = algo.train()
            metrics = collect(result)
            if controller is not None:
                metrics.update(controller.after_iteration(iteration, metrics))
            tracker.log_metrics(metrics, step=iteration)
            print(progress_line(iteration, cfg.train.iterations, metrics), flush=True)
            if cfg.train.checkpoint_every and iteration % cfg.train.checkpoint_every == 0:
                checkpoint(iteration, metrics)
                saved = iteration
            if on_iteration is not None:
                on_iteration(iteration, metrics)
        if saved < cfg.train.iterations:
            checkpoint(cfg.train.iterations, metrics)
        final = {**metrics, **collect(result, lifetime=True)}
    except BaseException as err:
        if was_interrupted(err):
            _kill_env_runners(algo)
        raise
    finally:
        algo.stop()
        if controller is not None:  # what the cache learned survives a failed or interrupted run
            tracker.log_artifact(controller.save_snapshot())
            if (run_dir / CHANGE_LOG).is_file():
                tracker.log_artifact(run_dir / CHANGE_LOG)
    if cache is not None:
        _log_json(tracker, run_dir / "cache_stats.json",
                  {"cache_actor": ray.get(cache.stats.remote()), "llm_pool": ray.get(pool.stats.remote())})
    module = trained_module(run_dir / CHECKPOINT)
    if cfg.env.name in CONTINUOUS_ENVS:
        evaluations = _evaluate_continuous(cfg, module)
        for video in _record_videos(cfg, module, run_dir):
            tracker.log_artifact(video, "videos")
    else:
        evaluations = _evaluate(cfg, module)
    eval_metrics = {k: v for prefix, result in evaluations.items() for k, v in result.as_dict(prefix).items()}
    summary = {
        **final,
        "train_episode_return_mean": final.get("episode_return_mean", float("nan")),
        "train_success_rate": final.get("success_rate", float("nan")),
        **eval_metrics,
        "eval_seeds": [cfg.eval.seed, cfg.eval.seed + cfg.eval.episodes - 1],
        "wall_time_s": time.monotonic() - started,
        "checkpoint": str(run_dir / CHECKPOINT),
    }
    tracker.log_metrics({f"eval_{k}": v for k, v in eval_metrics.items()}, step=cfg.train.iterations)
    return summary


def _log_json(tracker: RunTracker, path: Path, content: dict[str, Any]) -> None:
    path.write_text(json.dumps(content, indent=2, sort_keys=True))
    tracker.log_artifact(path)


def trained_module(checkpoint: Path) -> RLModule:
    """The learner's RLModule from an algorithm checkpoint (what training produced)."""
    return RLModule.from_checkpoint(
        checkpoint / COMPONENT_LEARNER_GROUP / COMPONENT_LEARNER / COMPONENT_RL_MODULE / DEFAULT_MODULE_ID
    )


def _evaluate_continuous(cfg: ExperimentConfig, module: RLModule) -> dict[str, EvalResult]:
    """Trained policy (no prefix) and uniform random actions (`random_`), on held-out seeds.

    No LLM is asked: the SAC module reads the raw observation only (`algorithms/sac_prior.py`),
    so the env's prior columns stay uniform.
    """
    env = make_continuous_rllib_env(env_config(cfg.env, cfg.prior, False, role="eval"))
    policies = {"": continuous_module_policy(module, cfg.eval.greedy), "random_": continuous_random_policy(env.action_space)}
    try:
        return {prefix: evaluate(env, policy, cfg.eval.episodes, cfg.eval.seed,
                                 label=f"evaluation ({prefix.rstrip('_') or 'trained policy'})")
                for prefix, policy in policies.items()}
    finally:
        env.close()


def _record_videos(cfg: ExperimentConfig, module: RLModule, run_dir: Path) -> list[Path]:
    """GIFs of the trained policy's first `eval.videos` evaluation episodes (`videos.py`)."""
    if not cfg.eval.videos:
        return []
    config = {**env_config(cfg.env, cfg.prior, False, role="eval"), "render_mode": "rgb_array"}
    return record_episodes(lambda: make_continuous_rllib_env(config), continuous_module_policy(module, cfg.eval.greedy),
                           cfg.eval.videos, cfg.eval.seed, cfg.eval.video_steps, run_dir / "videos", cfg.name)


def _evaluate(cfg: ExperimentConfig, module: RLModule) -> dict[str, EvalResult]:
    """Trained policy (no prefix), LLM prior alone (`prior_`, unless `eval.prior_alone` is off), random (`random_`).

    Held-out seeds always; on ALFWorld also held-out games (`env.alfworld.eval_split`).
    """
    policies = {"": module_policy(module, cfg.eval.greedy), "random_": random_policy}
    if uses_prior(cfg) and cfg.eval.prior_alone:
        policies["prior_"] = prior_policy
    results = {}
    for prefix, policy in policies.items():
        # Only policies that read the prior pay for it: the random policy's env asks no LLM.
        env = make_env(env_config(cfg.env, cfg.prior, uses_prior(cfg) and prefix != "random_", role="eval"))
        try:
            results[prefix] = evaluate(env, policy, cfg.eval.episodes, cfg.eval.seed,
                                       label=f"evaluation ({prefix.rstrip('_') or 'trained policy'})")
        finally:
            env.close()
    return results
