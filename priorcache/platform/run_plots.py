"""The figures every training run logs to MLflow, built from the run's own metric history.

`log_run_plots()` reads the run's per-iteration metrics back from its MLflow store
(`MlflowClient.get_metric_history`), draws matplotlib figures (Agg canvas, no display, no
pyplot state) and logs them with `mlflow.log_figure` under `plots/`:

| artifact | what it shows | logged when |
|---|---|---|
| `plots/learning_curves.png` | training return and success per iteration vs env steps; the held-out evaluation (agent, LLM prior alone, random) as markers at the last step | always |
| `plots/cache_llm.png` | cache hit rate per iteration; LLM queries against prior requests (cumulative) | the run asked for priors |
| `plots/prior_latency.png` | p50 and p95 of the prior request and of the LLM call per iteration (log scale): how the latency distribution moves as the cache fills | the run asked for priors |
| `plots/cache_params.png` | threshold, capacity, refresh interval and prior temperature per iteration | `prior.cache.meta.enabled` |
| `plots/kl_audit_bound.png` | audited KL(cached ‖ fresh) per hit against the bound, per iteration (docs/cache.md) | the run asked for priors |

`run_experiment` calls it where the run is closed, for finished, failed and interrupted runs
alike (then the figures show the iterations that were logged). It never raises: a figure
that cannot be made is a warning, so plotting can neither mask a run's own error nor fail a
finished run. It reads metrics and params and logs artifacts; it never logs metrics or
changes the run's status.
"""

from __future__ import annotations

import logging
import math
from typing import Sequence

import mlflow
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient

from priorcache.platform.cache.controller import PARAM_METRICS

log = logging.getLogger("priorcache")

PLOTS_DIR = "plots"
Series = list[tuple[int, float]]
"""(MLflow step = training iteration, value), in step order."""
History = dict[str, Series]

_LEARNING = ("episode_return_mean", "success_rate")
_EVAL = {"": ("agent", "*", 13), "prior_": ("LLM prior alone", "D", 7), "random_": ("random", "v", 8)}
"""Evaluation prefix -> (label, marker, size): distinct shapes, as the three often coincide (all 1.0)."""
_CACHE = ("cache_hit_rate", "llm_queries", "prior_requests")
_LATENCY = ("prior_latency_ms_p50", "prior_latency_ms_p95", "llm_latency_ms_p50", "llm_latency_ms_p95")
_KL = ("prior_kl_audit_window", "prior_kl_bound", "prior_kl_audit")
PLOTTED: tuple[str, ...] = (
    "env_steps", *_LEARNING, *_CACHE, *_LATENCY, *_KL, *PARAM_METRICS.values(),
    *(f"eval_{prefix}{name}" for prefix in _EVAL for name in _LEARNING),
)
"""The metric histories the figures read."""
META_PARAM = "prior.cache.meta.enabled"


def read_history(client: MlflowClient, run_id: str, names: Sequence[str] = PLOTTED) -> History:
    """The per-step history of each of `names` the run logged (absent names are left out)."""
    logged = client.get_run(run_id).data.metrics
    history: History = {}
    for name in names:
        if name in logged:
            points = sorted((m.step, m.value) for m in client.get_metric_history(run_id, name))
            history[name] = [(step, value) for step, value in points if math.isfinite(value)]
    return history


def build_figures(history: History, meta_enabled: bool) -> dict[str, Figure]:
    """Artifact name -> figure, following the table of the module docstring."""
    x = _env_steps(history)
    figures = {"learning_curves.png": _learning_figure(history, x)}
    if any(value > 0 for _, value in history.get("prior_requests", [])):
        figures["cache_llm.png"] = _cache_figure(history, x)
        figures["prior_latency.png"] = _latency_figure(history, x)
        figures["kl_audit_bound.png"] = _kl_figure(history, x)
    if meta_enabled and any(name in history for name in PARAM_METRICS.values()):
        figures["cache_params.png"] = _params_figure(history, x)
    return figures


def log_run_plots(run_id: str | None = None) -> list[str]:
    """Log the run's figures (default: the active run); returns the artifact paths logged.

    Raises only when there is no run to plot; failures while plotting are warnings.
    """
    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise ValueError("log_run_plots: pass the run_id, or call it inside `mlflow.start_run()`")
        run_id = active.info.run_id
    logged: list[str] = []
    try:
        client = MlflowClient()
        meta = client.get_run(run_id).data.params.get(META_PARAM) == "True"
        for name, figure in build_figures(read_history(client, run_id), meta).items():
            path = f"{PLOTS_DIR}/{name}"
            client.log_figure(run_id, figure, path)
            logged.append(path)
    # Plotting runs while a run closes, often because of another error: any failure here is
    # reported and swallowed, so the run's own outcome (and traceback) stays what it was.
    except Exception as err:  # noqa: BLE001
        log.warning("run plots: %s logged, then failed: %r", logged or "nothing", err)
    return logged


def _env_steps(history: History) -> dict[int, float]:
    """MLflow step -> env steps at that iteration (the iteration itself when none were logged)."""
    return {step: value for step, value in history.get("env_steps", [])}


def _xy(series: Series, x: dict[int, float]) -> tuple[list[float], list[float]]:
    return [x.get(step, float(step)) for step, _ in series], [value for _, value in series]


def _new(panels: int, title: str, rows: int = 1) -> tuple[Figure, list[Axes]]:
    columns = math.ceil(panels / rows)
    figure = Figure(figsize=(4.6 * columns, 3.4 * rows), layout="constrained")
    axes = list(figure.subplots(rows, columns, squeeze=False).flat)
    figure.suptitle(title, fontsize=11)
    return figure, axes


def _finish(ax: Axes, ylabel: str) -> None:
    ax.set_xlabel("env steps")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if not ax.lines:  # an empty panel says so instead of showing bare axes
        ax.text(0.5, 0.5, "not measured in this run", ha="center", va="center", transform=ax.transAxes,
                color="grey")
    elif ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def _learning_figure(history: History, x: dict[int, float]) -> Figure:
    figure, axes = _new(2, "Learning: training episodes per iteration, held-out evaluation at the end")
    for ax, name, label in zip(axes, _LEARNING, ("episode return (mean)", "success rate")):
        if history.get(name):
            ax.plot(*_xy(history[name], x), "o-", label="training episodes")
        for prefix, (who, marker, size) in _EVAL.items():
            point = history.get(f"eval_{prefix}{name}")
            if point:
                step, value = point[-1]
                ax.plot([x.get(step, float(step))], [value], marker,
                        markersize=size, alpha=0.8, label=f"held-out: {who}")
        _finish(ax, label)
    return figure


def _cache_figure(history: History, x: dict[int, float]) -> Figure:
    figure, (rate, queries) = _new(2, "Cache: hits per iteration, LLM queries against prior requests")
    if history.get("cache_hit_rate"):
        rate.plot(*_xy(history["cache_hit_rate"], x), "o-", label="cache hit rate (iteration)")
        rate.set_ylim(-0.02, 1.02)
    _finish(rate, "hit rate")
    for name, label in (("prior_requests", "prior requests"), ("llm_queries", "LLM queries")):
        if history.get(name):
            queries.plot(*_xy(history[name], x), "o-", label=label)
    _finish(queries, "cumulative count")
    return figure


def _latency_figure(history: History, x: dict[int, float]) -> Figure:
    figure, axes = _new(2, "Latency per iteration: p50 (solid) and p95 (dashed)")
    for ax, prefix, label in zip(axes, ("prior_latency_ms", "llm_latency_ms"), ("prior request", "LLM call")):
        for quantile, style in (("p50", "o-"), ("p95", "s--")):
            series = history.get(f"{prefix}_{quantile}")
            if series:
                ax.plot(*_xy(series, x), style, label=f"{label} {quantile}")
        if ax.lines and all(v > 0 for line in ax.lines for v in line.get_ydata()):
            ax.set_yscale("log")
        _finish(ax, f"{label} latency (ms)")
    return figure


def _params_figure(history: History, x: dict[int, float]) -> Figure:
    names = list(PARAM_METRICS.values())
    figure, axes = _new(len(names), "Cache parameters set by the meta-optimizer", rows=2)
    for ax, name in zip(axes, names):
        if history.get(name):
            ax.plot(*_xy(history[name], x), "o-", drawstyle="steps-post")
        _finish(ax, name)
    return figure


def _kl_figure(history: History, x: dict[int, float]) -> Figure:
    figure, (ax,) = _new(1, "Audited KL(cached || fresh) per hit against the bound")
    for name, style, label in (("prior_kl_bound", "s--", "bound (slope from earlier iterations)"),
                               ("prior_kl_audit_window", "o-", "measured (audits of the iteration)"),
                               ("prior_kl_audit", "^:", "measured (whole run so far)")):
        if history.get(name):
            ax.plot(*_xy(history[name], x), style, label=label)
    if ax.lines and not history.get("prior_kl_bound"):
        ax.set_title("no bound yet: it is calibrated on audits of earlier iterations", fontsize=8, color="grey")
    _finish(ax, "KL per hit (nats)")
    return figure
