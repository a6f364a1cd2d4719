"""Continuous CQL-Prior: the prior proposal's densities, the conservative term against a
hand-computed example through RLlib's own CQL loss, and training on a small HalfCheetah dataset
recorded through the real prior path."""

import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.algorithms.sac.sac_learner import ACTION_DIST_INPUTS_NEXT, QF_PREDS
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns

from priorcache.algorithms.cql_prior_continuous import OOD_LOGP, CQLPriorConfig, uniform_log_density
from priorcache.algorithms.sac_prior import PRE_TANH, PRE_TANH_NEXT
from priorcache.envs.continuous_prior import prior_obs_space
from priorcache.envs.motion_primitives import Primitive

REPO = Path(__file__).resolve().parents[2]
# One action dimension, two primitives: "push" (mean 0.5) and "pull" (mean -0.5).
PRIMITIVES = [Primitive("push", np.array([0.5]), np.array([0.3])), Primitive("pull", np.array([-0.5]), np.array([0.3]))]
RAW = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)


def tiny_config(num_actions: int = 2) -> CQLPriorConfig:
    return (
        CQLPriorConfig()
        .environment(observation_space=prior_obs_space(RAW, 2),
                     action_space=gym.spaces.Box(-1.0, 1.0, (1,), np.float32))
        .offline_data(input_="unused", dataset_num_iters_per_learner=1)
        .training(lr=None, twin_q=False, num_actions=num_actions, min_q_weight=1.0, temperature=1.0, bc_iters=0)
        .rl_module(model_config={"fcnet_hiddens": [8], "head_fcnet_hiddens": [8]})
        .prior_mixture(primitives=PRIMITIVES, target_kl_per_dim=1.0)
    )


def test_prior_proposal_samples_come_from_the_states_mixture_with_their_density():
    """All the weight on "push": the samples sit around 0.5, and the log density the module
    returns is the hand-computed one of that primitive's pre-tanh Gaussian pushed through tanh."""
    module = tiny_config().build_learner().module[DEFAULT_MODULE_ID]
    obs = torch.tensor([[0.0, 0.0, 0.0, 0.0, -30.0]])  # log-weights: push 0, pull -30
    torch.manual_seed(0)
    actions, logp = module.ood_actions(obs, 2000)
    # tanh is monotone: the median action is tanh of the pre-tanh mean, the primitive's 0.5.
    assert actions.shape == (2000, 1) and abs(actions.median().item() - 0.5) < 0.03
    m, s = math.atanh(0.5), 0.3 / (1 - 0.25)  # the primitive in pre-tanh units (mixture_prior.py)
    # Away from the bounds, where atanh of a float32 action recovers its pre-tanh sample.
    inner = actions[:, 0].abs() < 0.9
    a = actions[inner, 0][:20].double()
    u = torch.atanh(a)
    expected = -0.5 * ((u - m) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi) - torch.log(1 - a * a)
    assert logp[inner][:20].double().numpy() == pytest.approx(expected.numpy(), abs=1e-3)


def test_the_conservative_term_weights_prior_samples_by_the_prior_density():
    """B = 1, N = 2 samples per proposal, one critic. RLlib's loss computes
    logsumexp[Q_rand - log mu_rand, Q_next - log pi_next, Q_curr - log pi_curr] - Q(s, a_data);
    CQL-Prior's proposal mu is the prior, so the first two entries are Q - log prior(a)."""
    learner = tiny_config().build_learner()
    obs = torch.tensor([[0.1, 0.2, 0.3, math.log(0.5), math.log(0.5)]])
    q_rand, logp_rand = torch.tensor([1.0, 2.0]), torch.tensor([0.3, -0.4])
    q_next, logp_next = torch.tensor([0.5, 0.0]), torch.tensor([0.1, 0.2])
    q_curr, logp_curr = torch.tensor([1.5, -1.0]), torch.tensor([-0.2, 0.6])
    q_data = 0.7
    fwd_out = {
        QF_PREDS: torch.tensor([q_data]), "q_target_next": torch.tensor([0.0]), "q_curr": torch.tensor([0.0]),
        Columns.ACTION_DIST_INPUTS: torch.zeros(1, 2), ACTION_DIST_INPUTS_NEXT: torch.zeros(1, 2),
        PRE_TANH: torch.zeros(1, 1, requires_grad=True), PRE_TANH_NEXT: torch.zeros(1, 1),
        "logp_resampled": torch.zeros(1), "logp_next_resampled": torch.zeros(1),
        "q_rand_repeat": q_rand.view(1, 2, 1), OOD_LOGP: logp_rand.view(1, 2, 1),
        "q_next_repeat": q_next.view(1, 2, 1), "logps_next_repeat": logp_next.view(1, 2, 1),
        "q_curr_repeat": q_curr.view(1, 2, 1), "logps_curr_repeat": logp_curr.view(1, 2, 1),
        "actions_curr_repeat": torch.zeros(2, 1),
    }
    batch = {Columns.OBS: obs, Columns.NEXT_OBS: obs, Columns.ACTIONS: torch.zeros(1, 1),
             Columns.REWARDS: torch.zeros(1), Columns.TERMINATEDS: torch.zeros(1)}
    learner.compute_loss_for_module(module_id=DEFAULT_MODULE_ID, config=learner.config, batch=batch, fwd_out=fwd_out)
    terms = torch.cat([q_rand - logp_rand, q_next - logp_next, q_curr - logp_curr])
    expected = torch.logsumexp(terms, 0).item() - q_data
    assert float(learner.metrics.peek((DEFAULT_MODULE_ID, "cql_loss"))) == pytest.approx(expected, abs=1e-5)
    # RLlib's plain CQL would have used the uniform density log 2^-1 for the first two.
    assert uniform_log_density(1) == pytest.approx(-math.log(2))
    # The actor's KL: both policy and prior (equal mixture) evaluated at u = 0, the policy N(0, 1).
    mixture = 0.5 * 2 * math.exp(-0.5 * (math.atanh(0.5) / 0.4) ** 2) / (0.4 * math.sqrt(2 * math.pi))
    kl = -0.5 * math.log(2 * math.pi) - math.log(mixture)
    assert float(learner.metrics.peek((DEFAULT_MODULE_ID, "prior_kl"))) == pytest.approx(kl, abs=1e-4)


@pytest.mark.slow
def test_cql_prior_trains_on_a_small_halfcheetah_dataset_recorded_through_the_real_prior_path(ray_session, tmp_path):
    """Record an expert (sine gait) dataset of HalfCheetah (real Gemma GGUF through the shared
    cache), then train continuous CQL-Prior on it for two iterations through `priorcache run`."""
    from priorcache.experiment import run_experiment
    from priorcache.offline.dataset import read_transitions, run_dataset
    from priorcache.platform.config import load_config

    experiment = REPO / "experiments" / "halfcheetah_cql_prior.yaml"
    overrides = [
        f"output_dir={tmp_path / 'runs'}", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        "prior.cache.namespace=cql-prior-continuous-test", "env.max_steps=30",
        "offline.quality=expert", "offline.episodes=2", f"offline.dataset={tmp_path / 'dataset'}",
        "train.iterations=2", "algorithm.updates_per_iteration=3", "algorithm.minibatch_size=16",
        "algorithm.hidden=16", "offline.eval_episodes=1", "eval.episodes=1",
    ]
    folder, card = run_dataset(experiment, overrides, progress=False)
    assert 0 < card.llm_queries <= card.prior_requests == card.steps + card.episodes
    # HalfCheetah has no success signal: the card says so instead of a success rate of 0.
    card_text = (folder / "CARD.md").read_text()
    assert math.isnan(card.success_rate) and "| success rate | – |" in card_text
    assert "No episode of `halfcheetah` reported success or failure" in card_text
    rows = read_transitions(folder)
    assert len(rows) == card.steps == 60
    # The prior is in the data: the LLM's log-weights over the 8 primitives, a distribution.
    logw = rows[0]["obs"][-8:]
    assert np.exp(logw).sum() == pytest.approx(1.0, abs=1e-3)

    outcome = run_experiment(load_config(experiment, overrides))
    summary = json.loads(outcome.summary_path.read_text())
    assert summary["status"] == "finished"
    assert summary["env_steps"] == 2 * 3 * 16  # transitions trained on
    assert summary["train_time_s"] > 0 and summary["episodes"] == 1
    assert summary["prior_kl"] > 0  # the KL-to-prior actor loss ran
