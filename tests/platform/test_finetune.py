"""LoRA fine-tuning of the prior LLM end to end on a tiny demonstrations file, on the real model.

One run (module fixture: the GGUF -> transformers load dominates) trains a few steps, exports
the adapter to GGUF and evaluates base and tuned model through the llama.cpp backend; the tests
read its outputs, load the adapter in `LlamaCppBackend` and check the config errors.
"""

import json
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pytest

from priorcache.demos import DemoStep
from priorcache.platform.config import ConfigError, LLMConfig, load_config
from priorcache.platform.llm.backend import ModelFileError
from priorcache.platform.llm.finetune import load_finetune_config, native_bf16, run_finetune
from priorcache.platform.llm.finetune_data import split_by_game
from priorcache.platform.llm.gguf_adapter import export_lora_gguf, import_lora_gguf, read_adapter_file
from priorcache.platform.llm.llama_cpp_backend import LlamaCppBackend
from priorcache.platform.llm.model_files import cache_dir_from_env, resolve_model_path
from priorcache.platform.llm.prompts import load_prompt
from priorcache.platform.llm.replica import PriorScorer

TEMPLATE = load_prompt("textworld-v1")
ROOMS = ("kitchen", "bathroom", "bedroom")
STEPS = 4


def _demos() -> list[DemoStep]:
    """Three games of three steps in ALFWorld's style; the expert always goes to the target first."""
    steps = []
    for g, room in enumerate(ROOMS):
        target = ("fridge 1", "sinkbasin 1", "dresser 1")[g]
        candidates = ["look", "inventory", f"go to {target}", "go to cabinet 1", "examine shelf 2"]
        plan = [f"go to {target}", "look", "inventory"]
        for i, action in enumerate(plan):
            state = f"Your task is to: find a mug in the {room}.\nYou are in the {room}; you see a {target}."
            steps.append(DemoStep("alfworld", "valid_train", f"game-{room}", g, i,
                                  state + f" Step {i}.", tuple(candidates), action, True))
    return steps


def _write_demos(path: Path) -> Path:
    path.write_text("".join(json.dumps({**s.__dict__, "candidates": list(s.candidates)}) + "\n" for s in _demos()))
    return path


@pytest.fixture(scope="module")
def demos_file(tmp_path_factory) -> Path:
    return _write_demos(tmp_path_factory.mktemp("demos") / "demos.jsonl")


@pytest.fixture(scope="module")
def run(tmp_path_factory, demos_file):
    out = tmp_path_factory.mktemp("finetune")
    cfg = load_finetune_config(None, [
        f"data.demos={demos_file}", "data.heldout_fraction=0.3", "data.eval_steps=0",
        "lora.r=8", "lora.alpha=16", "lora.dropout=0", "lora.target_modules=[q_proj,v_proj,down_proj]",
        "train.lr=3e-3", "train.batch_size=3", f"train.max_steps={STEPS}", "train.checkpoint_every=2",
        # One thread: on 2 shared cores, a 2-thread run next to any other busy process is 5-10x slower.
        "train.heldout_loss_every=2", "train.threads=1", f"output_dir={out}", f"tracking.uri=sqlite:///{out}/mlflow.db",
        "tracking.experiment=test-finetune",
    ])
    return cfg, run_finetune(cfg, log=lambda line: None)


def test_run_writes_adapter_summary_checkpoint_and_one_mlflow_run(run):
    cfg, outcome = run
    out = Path(cfg.output_dir)
    summary = json.loads((out / "finetune.json").read_text())
    assert summary["steps"] == STEPS and summary["stop_reason"] == "max_steps"
    assert summary["games"] == {"train": 2, "heldout": 1}
    assert (out / "peft_adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((out / "checkpoint" / "step.json").read_text()) == {"step": STEPS}
    assert outcome.adapter_path == out / "adapter.gguf"
    assert read_adapter_file(outcome.adapter_path).n_weights == 3 * 18  # 3 modules x 18 blocks
    assert summary["override"] == f"prior.llm.adapter_path={outcome.adapter_path}"
    # the action's tokens became likelier on held-out game states too
    assert summary["heldout_loss"]["end"] < summary["heldout_loss"]["start"]
    for model in ("base", "tuned"):
        assert summary["eval"][model]["steps"] == 3
        assert 1 <= summary["eval"][model]["mean_rank"] <= 5

    mlflow.set_tracking_uri(cfg.tracking.uri)
    run = mlflow.get_run(summary["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["lora.r"] == "8"
    assert {"base_top1", "tuned_top1", "base_mean_rank", "tuned_mean_rank", "heldout_loss", "export_s"} <= set(run.data.metrics)
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "train_loss")
    assert [m.step for m in history] == list(range(1, STEPS + 1))


def test_training_goes_on_from_a_shipped_adapter_with_extra_demos(run, tmp_path):
    """One more step from the module run's adapter.gguf (imported back to peft, exactly) starts
    where that run ended, not from scratch: its held-out loss at step 0 is the earlier run's final
    one and its LoRA shape the earlier one's. Extra demonstrations train beside `data.demos`,
    except their steps on its held-out games."""
    cfg, outcome = run
    heldout_game = split_by_game(_demos(), 0.3, seed=0)[1][0].game
    extra = [replace(step, game=game, action="go to cabinet 1")
             for step, game in zip(_demos(), ["game-attic", "game-kitchen", "game-bedroom", heldout_game])]
    extra_file = tmp_path / "learner.jsonl"
    extra_file.write_text("".join(json.dumps({**s.__dict__, "candidates": list(s.candidates)}) + "\n" for s in extra))
    out = tmp_path / "more"
    more = load_finetune_config(None, [
        f"data.demos={cfg.data.demos}", f"data.extra_demos=[{extra_file}]", "data.heldout_fraction=0.3",
        "data.eval_steps=0", "lora.dropout=0", f"train.init_adapter={outcome.adapter_path}", "train.lr=3e-3",
        "train.batch_size=3", "train.max_steps=1", "train.threads=1", f"output_dir={out}",
        f"tracking.uri=sqlite:///{out}/mlflow.db",
    ])
    summary = run_finetune(more, log=lambda line: None).summary
    assert summary["heldout_loss"]["start"] == pytest.approx(outcome.summary["heldout_loss"]["end"], rel=0.02)
    assert read_adapter_file(out / "adapter.gguf").n_weights == 3 * 18
    assert (out / "init_adapter" / "adapter_config.json").is_file()
    expected = [s for s in extra if s.game != heldout_game]
    assert summary["extra_steps"] == {"trained": len(expected), "dropped_heldout_games": len(extra) - len(expected)}
    assert summary["examples"]["train"] == outcome.summary["examples"]["train"] + len(expected)
    assert summary["examples"]["heldout"] == outcome.summary["examples"]["heldout"]


def test_gguf_adapter_imports_back_exactly(run, tmp_path):
    """export(import(adapter.gguf)) is the same file's tensors, bit for bit (float32 both ways)."""
    import gguf

    _, outcome = run
    base = resolve_model_path(None, cache_dir_from_env())
    folder = import_lora_gguf(outcome.adapter_path, base, tmp_path / "peft")
    assert json.loads((folder / "adapter_config.json").read_text())["r"] == 8
    again = export_lora_gguf(folder, base, tmp_path / "again.gguf")
    first = {t.name: t.data for t in gguf.GGUFReader(outcome.adapter_path).tensors}
    second = {t.name: t.data for t in gguf.GGUFReader(again.path).tensors}
    assert first.keys() == second.keys() and all(np.array_equal(first[k], second[k]) for k in first)
    assert again.alpha == read_adapter_file(outcome.adapter_path).alpha == 16


def test_exported_adapter_scores_like_the_torch_model_not_like_the_base(run):
    """llama.cpp with adapter.gguf vs the peft model on held-out candidates: within the quantised
    model's noise (~0.1-0.2 nats, see test_llama_cpp_backend), while the adapter moved them far more."""
    _, outcome = run
    check = outcome.summary["export"]
    assert check["gguf_vs_torch_mean_abs"] < 0.1
    assert check["gguf_vs_torch_max_abs"] < 0.35
    assert check["tuned_vs_base_mean_abs"] > 5 * check["gguf_vs_torch_mean_abs"]


def test_backend_with_adapter_has_its_own_model_id_and_scores(run):
    _, outcome = run
    gguf = resolve_model_path(None, cache_dir_from_env())
    step = split_by_game(_demos(), 0.3, seed=0)[0][0]  # a step the run trained on
    prompt = [TEMPLATE.render_state(state=step.state)]
    cands = [[TEMPLATE.render_candidate(c) for c in step.candidates]]
    base = LlamaCppBackend(gguf, TEMPLATE.prefix, n_threads=1)
    tuned = LlamaCppBackend(gguf, TEMPLATE.prefix, n_threads=1, adapter_path=outcome.adapter_path)
    try:
        assert tuned.model_id.startswith(base.model_id + "+lora-") and len(tuned.model_id) == len(base.model_id) + 14
        assert tuned.model_id == outcome.summary["model_id"]["tuned"]
        base_scores, tuned_scores = base.score(prompt, cands)[0], tuned.score(prompt, cands)[0]
    finally:
        base.close()
        tuned.close()
    assert np.mean(np.abs(tuned_scores - base_scores)) > 0.5
    assert np.argmax(tuned_scores) == step.candidates.index(step.action)


def test_prior_scorer_built_from_config_serves_the_adapter(run):
    _, outcome = run
    scorer = PriorScorer(LLMConfig(adapter_path=str(outcome.adapter_path), n_threads=1))
    try:
        assert scorer.model_id == outcome.summary["model_id"]["tuned"]
    finally:
        scorer.backend.close()


def test_adapter_path_config_is_checked(run, tmp_path):
    _, outcome = run
    cfg = load_config(None, [f"prior.llm.adapter_path={outcome.adapter_path}"])
    assert cfg.prior.llm.adapter_path == str(outcome.adapter_path)
    with pytest.raises(ConfigError, match="prior.llm.adapter_path.*does not exist"):
        load_config(None, [f"prior.llm.adapter_path={tmp_path / 'missing.gguf'}"])
    model = resolve_model_path(None, cache_dir_from_env())
    with pytest.raises(ConfigError, match="prior.llm.adapter_path.*not a LoRA adapter"):
        load_config(None, [f"prior.llm.adapter_path={model}"])
    (tmp_path / "text.gguf").write_text("not a gguf")
    with pytest.raises(ConfigError, match="prior.llm.adapter_path.*not a GGUF LoRA adapter"):
        load_config(None, [f"prior.llm.adapter_path={tmp_path / 'text.gguf'}"])


def test_backend_refuses_a_file_that_is_not_an_adapter():
    model = resolve_model_path(None, cache_dir_from_env())
    with pytest.raises(ModelFileError, match="prior.llm.adapter_path"):
        LlamaCppBackend(model, TEMPLATE.prefix, n_threads=1, adapter_path=model)


@pytest.mark.parametrize("override, key", [
    ("lora.rank=4", "lora.rank"),
    ("lora.r=0", "lora.r"),
    ("lora.target_modules=[q_proj,lm_head]", "lora.target_modules"),
    ("train.batch_size=eight", "train.batch_size"),
    ("data.heldout_fraction=1.5", "data.heldout_fraction"),
    ("data.prompt=nope-v1", "data.prompt"),
    ("data.demos=/nonexistent/demos.jsonl", "data.demos"),
    ("train.init_adapter=/nonexistent/peft_adapter", "train.init_adapter"),
    ("train.init_adapter=/nonexistent/adapter.gguf", "train.init_adapter"),
    ("data.extra_demos=[/nonexistent/demos.jsonl]", "data.extra_demos"),
])
def test_config_errors_name_the_key(demos_file, override, key):
    overrides = [f"data.demos={demos_file}", override]
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_finetune_config(None, overrides)


def test_shipped_experiment_config_loads(demos_file):
    cfg = load_finetune_config("experiments/finetune/alfworld_lora.yaml", [f"data.demos={demos_file}"])
    assert cfg.output_dir == ".cache/finetune/alfworld"


def test_held_out_split_is_by_game():
    train, heldout = split_by_game(_demos(), 0.3, seed=0)
    assert len(heldout) == 3 and len(train) == 6
    assert not {s.game for s in train} & {s.game for s in heldout}
    assert split_by_game(_demos(), 0.3, seed=0) == (train, heldout)


def test_bf16_autocast_defaults_to_what_the_cpu_computes_natively(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f\n")
    assert not native_bf16(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert native_bf16(cpuinfo)
    assert not native_bf16(tmp_path / "absent")
    assert load_finetune_config(None, ["data.demos=README.md"]).train.bf16 is None
