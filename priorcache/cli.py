"""The `priorcache` command line (also `python -m priorcache`).

    priorcache run CONFIG [key=value ...] [--resume RUN_DIR]
                                             train + evaluate one experiment, tracked in MLflow;
                                             --resume continues a run from its last checkpoint
    priorcache eval SUITE [--domains ..] [--agents ..] [--fresh] [--render-only]
                                             every agent on every domain -> results table
    priorcache sweep SWEEP [--dry-run]       Ray Tune over cache policies, nested MLflow runs -> table
    priorcache bench cache-policies [--config F] [--envs ..] [--steps N] [--fresh] [--policies ..]
                                             every cache policy on the same env steps -> ratio table
    priorcache ui [--port N]                 MLflow UI on the project's run store
    priorcache demos DOMAIN|CONFIG [--out DIR] [--episodes N] [--keep-lost] [--learner [--beta B]] [key=value ...]
                                             expert demonstrations on the training games -> demos.jsonl
                                             (--learner: the greedy prior plays, the expert labels: DAgger)
    priorcache offline dataset CONFIG [key=value ...]
                                             record an offline dataset (offline.quality) -> parquet + card
    priorcache offline bench BENCH [--fresh-datasets]
                                             CQL vs CQL-Prior on the same datasets and seeds -> results table
    priorcache prior finetune CONFIG [key=value ...]
                                             LoRA on demonstrations (CPU) -> adapter.gguf for prior.llm.adapter_path

Input errors (config, game file, model file, cluster address) are reported in one line
naming the config key, with exit code 2; config errors before Ray starts. Ctrl-C and SIGTERM
(`kill`, `ray job stop`) end a command with exit code 130 after its interrupt handling has kept
what was recorded.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from typing import Sequence

from priorcache.interrupt import interrupt_on_sigterm, was_interrupted
from priorcache.platform.config import ConfigError, load_config

EXIT_CONFIG_ERROR = 2
EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C or SIGTERM (`priorcache.interrupt`): 128 + SIGINT, as shells report Ctrl-C."""


def _input_errors() -> tuple[type[Exception], ...]:
    """Errors that mean "fix your input", reported in one line instead of a traceback."""
    from priorcache.envs.alfworld_env import AlfworldGameError
    from priorcache.envs.babyai_env import BabyAILevelError
    from priorcache.envs.textworld_env import GameFileError
    from priorcache.envs.textworld_games import GameGenerationError
    from priorcache.experiment import ClusterError
    from priorcache.platform.embed import EmbedderError
    from priorcache.platform.cache.persist import SnapshotError
    from priorcache.platform.llm.backend import ModelFileError
    from priorcache.offline.dataset import DatasetError
    from priorcache.resume import ResumeError

    return (ConfigError, ClusterError, GameFileError, GameGenerationError, AlfworldGameError, BabyAILevelError,
            ModelFileError, EmbedderError, SnapshotError, ResumeError, DatasetError)


def _run(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as err:
        print(f"priorcache: config error: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    from priorcache.experiment import run_experiment

    try:
        outcome = run_experiment(cfg, resume=args.resume)
    except _input_errors() as err:
        print(f"priorcache: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    s = outcome.summary
    prior_only = f", LLM prior alone {s['prior_success_rate']:.2f}" if "prior_success_rate" in s else ""
    # Continuous control: the return is the result (success only means something on Meta-World).
    returns = (f"return {s['episode_return_mean']:.1f} (random {s['random_episode_return_mean']:.1f}), "
               if cfg.algorithm.name in ("sac_prior", "sac") else "")
    print(
        f"\nfinished {cfg.name}: {returns}success {s['success_rate']:.2f} (random {s['random_success_rate']:.2f}{prior_only})"
        f" on {s['episodes']:.0f} held-out episodes | LLM queries {s['llm_queries']:.0f} of "
        f"{s['prior_requests']:.0f} prior requests | cache hit rate {s['cache_hit_rate']:.1%}\n"
        f"summary.json : {outcome.summary_path}\n"
        f"MLflow run   : {outcome.mlflow_run_id} in {outcome.tracking_uri}\n"
        f"browse it    : priorcache ui   (then open http://127.0.0.1:5000)"
    )
    return 0


def _eval(args: argparse.Namespace) -> int:
    from priorcache.eval_suite import domain_agents, load_suite, run_suite

    try:
        suite = load_suite(args.suite, args.domains, args.agents)
        all_agents = list(dict.fromkeys(a for d in suite.domains for a in domain_agents(suite, d)))
        for key, chosen, known in (("--domains", args.domains, suite.domains), ("--agents", args.agents, all_agents)):
            unknown = [name for name in chosen if name not in known]
            if unknown:
                raise ConfigError(f"{key}: {unknown} not in the suite; choose from {', '.join(known)}")
        md_path = run_suite(suite, args.domains, args.agents, fresh=args.fresh, render_only=args.render_only)
    except _input_errors() as err:
        print(f"priorcache: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    print(f"results table: {md_path} (rows in {suite.output}.csv)")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from priorcache.sweep import format_trials, load_sweep, run_sweep

    try:
        sweep = load_sweep(args.sweep)
        if args.dry_run:
            print(format_trials(sweep))
            return 0
        outcome = run_sweep(sweep)
    except _input_errors() as err:
        print(f"priorcache: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    return 1 if outcome.failed else 0


def _bench(args: argparse.Namespace) -> int:
    from priorcache.cache_bench import main_cli

    try:
        md_path = main_cli(args.config, args.envs, args.steps, args.fresh, args.policies)
    except _input_errors() as err:
        print(f"priorcache: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if md_path is not None:
        print(f"cache benchmark: {md_path} (rows in {md_path.with_suffix('.json')}, plot {md_path.with_suffix('.png')})")
    return 0


def _demos(args: argparse.Namespace) -> int:
    from priorcache.demos import run_demos

    try:
        out_dir, card = run_demos(args.target, args.overrides, out=args.out, episodes=args.episodes,
                                  keep_lost=args.keep_lost, learner=args.learner,
                                  **({"beta": args.beta} if args.beta is not None else {}))
    except _input_errors() as err:
        print(f"priorcache: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    print(f"demos {card.domain}: {card.steps} steps of {card.episodes_kept} episodes on {card.games} games, "
          f"win rate {card.win_rate:.1%}, {card.seconds:.0f} s -> {out_dir}/ (demos.jsonl, CARD.md, card.json)")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from priorcache.demos import DemoFileError
    from priorcache.platform.llm.finetune import load_finetune_config, run_finetune, summary_lines

    try:
        outcome = run_finetune(load_finetune_config(args.config, args.overrides))
    except (*_input_errors(), DemoFileError) as err:
        print(f"priorcache: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    print(f"\n{summary_lines(outcome.summary)}")
    return 0


def _offline_dataset(args: argparse.Namespace) -> int:
    from priorcache.offline.dataset import run_dataset

    try:
        folder, card = run_dataset(args.config, args.overrides)
    except _input_errors() as err:
        print(f"priorcache: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    print(f"offline dataset {card.quality}: {card.episodes} episodes, {card.steps} steps, return "
          f"{card.return_mean:.2f} ± {card.return_std:.2f}, success {card.success_rate:.1%}, "
          f"LLM queries {card.llm_queries} of {card.prior_requests} prior requests -> {folder}/ (episodes/, CARD.md, card.json)")
    return 0


def _offline_bench(args: argparse.Namespace) -> int:
    from priorcache.offline.bench import load_bench, run_bench

    try:
        md_path = run_bench(load_bench(args.bench), fresh_datasets=args.fresh_datasets)
    except _input_errors() as err:
        print(f"priorcache: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    print(f"offline results: {md_path} (rows and curves in {md_path.with_suffix('.json')})")
    return 0


def _ui(args: argparse.Namespace) -> int:
    from priorcache.platform.tracking import default_artifact_root, default_tracking_uri

    store = args.store or default_tracking_uri()
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store,
           "--default-artifact-root", default_artifact_root().as_uri(),
           "--host", args.host, "--port", str(args.port)]
    print(f"MLflow UI on http://{args.host}:{args.port} (store {store}); Ctrl-C stops it", flush=True)
    return subprocess.call(cmd, env={**os.environ, "MLFLOW_ALLOW_FILE_STORE": "false"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="priorcache", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train and evaluate one experiment")
    run.add_argument("config", help="experiment YAML (e.g. experiments/textworld_ppo_prior.yaml)")
    run.add_argument("overrides", nargs="*", help="config overrides key=value (e.g. train.iterations=3)")
    run.add_argument("--resume", metavar="RUN_DIR", default=None,
                     help="continue this run folder from its last checkpoint, in the same MLflow run "
                          "(same config; train.iterations may be raised)")
    run.set_defaults(func=_run)
    ev = sub.add_parser("eval", help="run a results suite: every agent on every domain")
    ev.add_argument("suite", help="suite YAML (e.g. experiments/suites/text.yaml)")
    ev.add_argument("--domains", type=lambda s: s.split(","), default=[], help="comma-separated subset")
    ev.add_argument("--agents", type=lambda s: s.split(","), default=[], help="comma-separated subset")
    ev.add_argument("--fresh", action="store_true", help="redo the selected rows (--domains, --agents) even if in the CSV; other rows are kept")
    ev.add_argument("--render-only", action="store_true", help="only rewrite the markdown from the CSV")
    ev.set_defaults(func=_eval)
    sw = sub.add_parser("sweep", help="Ray Tune sweep over cache policies (one MLflow run per trial)")
    sw.add_argument("sweep", help="sweep YAML (e.g. experiments/sweeps/cache_policies.yaml)")
    sw.add_argument("--dry-run", action="store_true", help="print the trials and their overrides; start nothing")
    sw.set_defaults(func=_sweep)
    bench = sub.add_parser("bench", help="benchmarks that print side-by-side ratios")
    bench_sub = bench.add_subparsers(dest="benchmark", required=True)
    policies = bench_sub.add_parser("cache-policies", help="uncached vs exact vs static vs adaptive cache")
    policies.add_argument("--config", default="benchmarks/cache_policies.yaml", help="benchmark YAML")
    policies.add_argument("--envs", type=lambda s: s.split(","), default=[], help="comma-separated subset")
    policies.add_argument("--steps", type=int, default=None, help="env steps per (env, policy)")
    policies.add_argument("--fresh", action="store_true",
                          help="run every cell again, even those an interrupted run recorded")
    policies.add_argument("--policies", type=lambda s: s.split(","), default=None,
                          help="run only these policies' cells and record them, without a report "
                               "(to run some beside another invocation)")
    policies.set_defaults(func=_bench)
    demos = sub.add_parser("demos", help="record expert demonstrations on a domain's training games")
    demos.add_argument("target", help="alfworld, textworld, twsuite, babyai, or an experiment YAML")
    demos.add_argument("overrides", nargs="*", help="config overrides key=value (e.g. env.alfworld.max_games=0)")
    demos.add_argument("--out", default=None, help="dataset folder (default: .cache/demos/<domain>)")
    demos.add_argument("--episodes", type=int, default=None,
                       help="episodes to play (default: one per training game; TextWorld 1, BabyAI 100)")
    demos.add_argument("--keep-lost", action="store_true", help="keep episodes the expert did not win")
    demos.add_argument("--learner", action="store_true",
                       help="DAgger: the config's greedy prior plays, the expert labels its states "
                            "(default folder .cache/demos/<domain>-learner; ALFWorld)")
    demos.add_argument("--beta", type=float, default=None,
                       help="with --learner: share of steps the expert plays (default 0.5, demos.LEARNER_BETA)")
    demos.set_defaults(func=_demos)
    offline = sub.add_parser("offline", help="offline RL: record datasets, compare CQL and CQL-Prior")
    offline_sub = offline.add_subparsers(dest="offline_command", required=True)
    dataset = offline_sub.add_parser("dataset", help="record an offline dataset with a behaviour policy")
    dataset.add_argument("config", help="experiment YAML (e.g. experiments/textworld_cql_prior.yaml)")
    dataset.add_argument("overrides", nargs="*", help="config overrides key=value (e.g. offline.quality=expert)")
    dataset.set_defaults(func=_offline_dataset)
    bench_offline = offline_sub.add_parser("bench", help="CQL vs CQL-Prior on the same datasets and seeds")
    bench_offline.add_argument("bench", help="bench YAML (e.g. experiments/offline/bench.yaml)")
    bench_offline.add_argument("--fresh-datasets", action="store_true", help="record the datasets again")
    bench_offline.set_defaults(func=_offline_bench)
    prior = sub.add_parser("prior", help="work on the LLM prior itself")
    prior_sub = prior.add_subparsers(dest="prior_command", required=True)
    finetune = prior_sub.add_parser("finetune", help="LoRA-tune the prior LLM on expert demonstrations (CPU)")
    finetune.add_argument("config", help="fine-tuning YAML (e.g. experiments/finetune/alfworld_lora.yaml)")
    finetune.add_argument("overrides", nargs="*", help="config overrides key=value (e.g. train.max_steps=50)")
    finetune.set_defaults(func=_finetune)
    ui = sub.add_parser("ui", help="serve the MLflow UI on the project's run store")
    ui.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--store", default="", help="tracking URI (default: sqlite mlruns/mlflow.db)")
    ui.set_defaults(func=_ui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = interrupt_on_sigterm()
    try:
        return int(args.func(args))
    except (KeyboardInterrupt, Exception) as error:
        if not was_interrupted(error):
            raise
        print("priorcache: interrupted; what was recorded so far is kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
