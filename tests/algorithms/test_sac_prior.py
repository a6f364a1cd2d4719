"""SAC-Prior: a module that ignores the prior columns, its pre-tanh samples, and real training runs."""

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchSquashedGaussian

from priorcache.algorithms.sac_prior import (
    PRE_TANH, PRE_TANH_NEXT, PRIOR_COMPONENTS, SACPriorTorchRLModule, policy_gaussian,
)
from priorcache.envs.continuous_prior import prior_obs_space

OBS, ACT, K = 5, 2, 3
REPO = Path(__file__).resolve().parents[2]


def make_module() -> SACPriorTorchRLModule:
    raw = gym.spaces.Box(-np.inf, np.inf, (OBS,), np.float32)
    module = SACPriorTorchRLModule(
        observation_space=prior_obs_space(raw, K), action_space=gym.spaces.Box(-1.0, 1.0, (ACT,), np.float32),
        model_config={"fcnet_hiddens": [16], "head_fcnet_hiddens": [16], "fcnet_activation": "relu",
                      "head_fcnet_activation": "relu", "twin_q": True, PRIOR_COMPONENTS: K})
    module.make_target_networks()
    return module


def batch(seed: int, n: int = 4) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {Columns.OBS: torch.randn(n, OBS + K, generator=g), Columns.NEXT_OBS: torch.randn(n, OBS + K, generator=g),
            Columns.ACTIONS: torch.rand(n, ACT, generator=g) * 2 - 1}


def test_the_policy_ignores_the_prior_columns():
    module = make_module()
    b = batch(0)
    other = b[Columns.OBS].clone()
    other[:, -K:] = torch.randn(4, K)
    out = module.forward_inference({Columns.OBS: b[Columns.OBS]})[Columns.ACTION_DIST_INPUTS]
    torch.testing.assert_close(module.forward_inference({Columns.OBS: other})[Columns.ACTION_DIST_INPUTS], out)
    assert out.shape == (4, 2 * ACT)


def test_train_pass_keeps_the_pre_tanh_samples_behind_its_log_probs():
    module = make_module()
    out = module.forward_train(batch(1))
    for key in ("logp_resampled", "logp_next_resampled"):
        assert out[key].shape == (4,)
    inputs = {PRE_TANH: Columns.ACTION_DIST_INPUTS, PRE_TANH_NEXT: "action_dist_inputs_next"}
    for sample, dist_inputs in inputs.items():
        mean, std = policy_gaussian(out[dist_inputs])
        squashed = TorchSquashedGaussian(loc=mean, scale=std)
        logp = squashed.logp(torch.tanh(out[sample]))
        key = "logp_resampled" if sample == PRE_TANH else "logp_next_resampled"
        torch.testing.assert_close(out[key], logp, rtol=1e-3, atol=1e-3)
    # The actor's sample carries the policy's gradient; the next-state one does not.
    assert out[PRE_TANH].requires_grad and not out[PRE_TANH_NEXT].requires_grad
    assert out["q_curr"].requires_grad and not out["q_target_next"].requires_grad


def cheetah(tmp_path, algorithm: str, *extra: str):
    from priorcache.platform.config import load_config

    return load_config(REPO / "experiments" / "halfcheetah_sac_prior.yaml", [
        f"algorithm.name={algorithm}", f"output_dir={tmp_path / 'runs'}",
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", f"prior.cache.namespace=sac-{algorithm}",
        "env.max_steps=100", "train.iterations=2", "algorithm.train_batch_size=150", "algorithm.learning_starts=100",
        "algorithm.hidden=32", "algorithm.minibatch_size=32", "eval.episodes=1", "eval.video_steps=9", *extra,
    ])


@pytest.mark.slow
def test_sac_prior_trains_with_the_real_llm_and_cache(ray_session, tmp_path):
    """A few iterations end to end: Gemma scores the primitives through the shared cache, the
    learner's KL to the mixture and its temperature are logged, and the evaluation's GIF lands in MLflow."""
    import mlflow

    from priorcache.experiment import run_experiment

    outcome = run_experiment(cheetah(tmp_path, "sac_prior"))
    summary = json.loads(outcome.summary_path.read_text())
    assert summary["status"] == "finished" and summary["env_steps"] >= 300
    assert 0 < summary["llm_queries"] < summary["prior_requests"]  # the cache answered the rest
    assert np.isfinite(summary["prior_kl"]) and summary["prior_alpha"] > 0
    assert np.isfinite(summary["episode_return_mean"]) and np.isfinite(summary["random_episode_return_mean"])
    assert np.isnan(summary["success_rate"]) and np.isnan(summary["train_success_rate"])  # locomotion has none
    mlflow.set_tracking_uri(outcome.tracking_uri)
    videos = mlflow.artifacts.list_artifacts(run_id=outcome.mlflow_run_id, artifact_path="videos")
    assert [Path(v.path).suffix for v in videos] == [".gif"]


@pytest.mark.slow
def test_plain_sac_runs_through_the_same_harness_without_an_llm(ray_session, tmp_path):
    from priorcache.experiment import run_experiment

    summary = run_experiment(cheetah(tmp_path, "sac", "eval.videos=0")).summary
    assert summary["status"] == "finished" and summary["env_steps"] >= 300
    assert summary["llm_queries"] == 0 and "prior_kl" not in summary
