"""ExpertAgreement on real ALFWorld: its labels are the DAgger collector's labels of the same path."""

import numpy as np
import pytest

from priorcache import demos
from priorcache.demos import resolve_target
from priorcache.envs.alfworld_env import alfworld_data_dir
from priorcache.envs.expert_agreement import ExpertAgreement
from priorcache.envs.registry import make_text_env
from priorcache.platform.config import load_config

STEPS = 8


class FirstCandidate:
    description = "first candidate"

    def __call__(self, state, candidates):
        return candidates[0]


def _one_hot_logp(k: int, index: int) -> np.ndarray:
    logp = np.full(k, -5.0, np.float32)
    logp[index] = 0.0
    return logp


@pytest.mark.skipif(not (alfworld_data_dir() / "valid_train").is_dir(), reason="no ALFWorld data")
def test_agreement_along_a_players_path_matches_the_dagger_labels():
    cfg = load_config(resolve_target("alfworld")[0], ["env.alfworld.max_games=1", f"env.max_steps={STEPS}"])
    # The DAgger collector: the player always plays the first candidate, the expert labels each state.
    labelled, card = demos.collect_demos(cfg, 1, learner=FirstCandidate(), beta=0.0)
    assert len(labelled) == STEPS

    def replay(prior_argmax) -> ExpertAgreement:
        agreement = ExpertAgreement("alfworld")
        env = make_text_env(cfg.env, "train")
        try:
            obs, info = env.reset(seed=cfg.seed)
            agreement.reset(env, info, cfg.seed)
            for i, step in enumerate(labelled):
                candidates = tuple(obs["candidates"])
                agreement.observe(candidates, _one_hot_logp(len(candidates), prior_argmax(i, step)), info)
                agreement.played(candidates[0])
                obs, _, _, _, info = env.step(0)
        finally:
            agreement.close()
        return agreement

    def expert_slot(step) -> int:
        return step.candidates.index(step.action)

    # A prior whose argmax is the expert's command agrees everywhere; one that prefers the first
    # candidate agrees exactly where the collector's learner did; a mix of both in between.
    oracle = replay(lambda i, step: expert_slot(step))
    assert (oracle.labelled, oracle.rate, oracle.unlabelled_episodes) == (STEPS, 1.0, 0)
    first = replay(lambda i, step: 0)
    assert first.labelled == STEPS and first.rate == pytest.approx(card.learner_agreement)
    mixed = replay(lambda i, step: expert_slot(step) if i % 2 else 0)
    expected = sum(1 if i % 2 else expert_slot(step) == 0 for i, step in enumerate(labelled)) / STEPS
    assert mixed.rate == pytest.approx(expected) and 0 < mixed.rate < 1


def test_envs_without_a_following_expert_are_refused():
    with pytest.raises(ValueError, match="env.name.*'textworld'.*alfworld"):
        ExpertAgreement("textworld")
