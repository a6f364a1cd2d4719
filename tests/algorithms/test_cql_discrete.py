"""Discrete CQL / CQL-Prior: the loss against a hand-computed example, the prior's action set,
and CQL-Prior training on a small dataset recorded through the real prior path."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from priorcache.algorithms.cql_discrete import cql_loss
from priorcache.algorithms.prior_module import candidate_mask

REPO = Path(__file__).resolve().parents[2]


def test_loss_matches_a_hand_computed_example():
    """Two transitions, 3 slots, gamma 0.5, cql_alpha 2.

    1: Q(s) = (1, 2, 3), A(s) = slots {0, 1}, a = 0, r = 1, not terminal; online Q(s') = (0, 5, 1)
       over A(s') = {0, 2} picks a* = 2, target Q(s', 2) = 2, so y = 1 + 0.5 * 2 = 2;
       Huber(1 - 2) = 0.5; conservative = log(e^1 + e^2) - 1 = 1.313262.
    2: Q(s) = (0, 0, 0), every slot, a = 1, r = 0, terminal: y = 0, Huber 0;
       conservative = log 3 - 0 = 1.098612.
    loss = mean Huber + 2 * mean conservative = 0.25 + 2 * 1.205937 = 2.661874.
    """
    out = cql_loss(
        q=torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]),
        next_q=torch.tensor([[0.0, 5.0, 1.0], [9.0, 9.0, 9.0]]),
        target_next_q=torch.tensor([[4.0, 6.0, 2.0], [9.0, 9.0, 9.0]]),
        actions=torch.tensor([0, 1]), rewards=torch.tensor([1.0, 0.0]), terminated=torch.tensor([0.0, 1.0]),
        mask=torch.tensor([[True, True, False], [True, True, True]]),
        next_mask=torch.tensor([[True, False, True], [True, True, True]]),
        gamma=0.5, cql_alpha=2.0,
    )
    conservative = ((math.log(math.e + math.e ** 2) - 1) + math.log(3)) / 2
    assert out["td"].item() == pytest.approx(0.25)
    assert out["cql"].item() == pytest.approx(conservative, abs=1e-6)
    assert out["loss"].item() == pytest.approx(0.25 + 2 * conservative, abs=1e-6)
    assert out["loss"].item() == pytest.approx(2.661874, abs=1e-6)


def test_a_data_action_outside_the_priors_top_k_joins_the_logsumexp():
    """Q(s) = (0, 1, 2), A(s) = {0, 1} (the prior's top 2), data action 2: the term is
    log(e^0 + e^1 + e^2) - 2 = 0.407606, not log(e^0 + e^1) - 2 < 0 (which pushes Q(s, 2) up forever)."""
    out = cql_loss(q=torch.tensor([[0.0, 1.0, 2.0]]), next_q=torch.zeros(1, 3), target_next_q=torch.zeros(1, 3),
                   actions=torch.tensor([2]), rewards=torch.tensor([0.0]), terminated=torch.tensor([1.0]),
                   mask=torch.tensor([[True, True, False]]), next_mask=torch.tensor([[True, True, True]]),
                   gamma=0.9, cql_alpha=1.0)
    assert out["cql"].item() == pytest.approx(math.log(1 + math.e + math.e ** 2) - 2, abs=1e-6)


def test_the_gradient_lowers_q_on_the_action_set_and_raises_it_on_the_data_action():
    q = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    out = cql_loss(q=q, next_q=torch.zeros(1, 3), target_next_q=torch.zeros(1, 3), actions=torch.tensor([0]),
                   rewards=torch.tensor([1.0]), terminated=torch.tensor([1.0]),
                   mask=torch.tensor([[True, True, True]]), next_mask=torch.tensor([[True, True, True]]),
                   gamma=0.9, cql_alpha=1.0)
    # With the TD part at its optimum (Q(s, a) = r = 1) only the conservative term pulls.
    out["loss"].backward()
    softmax = torch.softmax(q.detach(), -1)[0]
    torch.testing.assert_close(q.grad[0], torch.tensor([softmax[0] - 1, softmax[1], softmax[2]]))


def test_cql_prior_takes_the_conservative_set_from_the_priors_top_k():
    logp = np.log(np.array([0.1, 0.6, 0.05, 0.25, 1.0], np.float32))
    obs = {"action_mask": torch.tensor([[1, 1, 1, 1, 0]], dtype=torch.float32),
           "prior_logp": torch.tensor(logp)[None]}
    assert candidate_mask(obs, 0).tolist() == [[True, True, True, True, False]]  # CQL: every candidate
    assert candidate_mask(obs, 2).tolist() == [[False, True, False, True, False]]  # CQL-Prior, k = 2


@pytest.mark.slow
def test_cql_prior_trains_on_a_small_dataset_recorded_through_the_real_prior_path(ray_session, tmp_path):
    """Record a medium dataset of a 2-room game (real Gemma GGUF through the shared cache),
    then train CQL-Prior on it for two iterations through `priorcache run`'s harness."""
    from priorcache.experiment import run_experiment
    from priorcache.offline.dataset import load_card, read_transitions, run_dataset
    from priorcache.platform.config import load_config

    experiment = REPO / "experiments" / "textworld_cql_prior.yaml"
    overrides = [
        f"output_dir={tmp_path / 'runs'}", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"env.games_dir={REPO / '.cache' / 'games'}", "env.game.world_size=2", "env.game.nb_objects=4",
        "env.game.quest_length=2", "env.max_steps=10", "prior.cache.namespace=cql-prior-test",
        "offline.quality=medium", "offline.episodes=3", f"offline.dataset={tmp_path / 'dataset'}",
        "train.iterations=2", "algorithm.updates_per_iteration=5", "algorithm.minibatch_size=16",
        "offline.eval_episodes=1", "eval.episodes=2",
    ]
    folder, card = run_dataset(experiment, overrides, progress=False)
    assert 0 < card.llm_queries < card.prior_requests  # each distinct state scored once, repeats from the cache
    rows = read_transitions(folder)
    assert len(rows) == card.steps == load_card(folder).steps
    # The prior is in the data: a real distribution over each state's candidates.
    obs = rows[0]["obs"]
    k = int(obs["action_mask"].sum())
    assert np.exp(obs["prior_logp"][:k]).sum() == pytest.approx(1.0, abs=1e-4)
    assert len(set(np.round(obs["prior_logp"][:k], 4))) > 1

    outcome = run_experiment(load_config(experiment, overrides))
    summary = json.loads(outcome.summary_path.read_text())
    assert summary["status"] == "finished"
    assert summary["env_steps"] == 2 * 5 * 16  # transitions trained on
    assert summary["train_time_s"] > 0
    assert 0 <= summary["success_rate"] <= 1 and summary["episodes"] == 2
