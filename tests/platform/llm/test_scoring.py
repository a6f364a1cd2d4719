"""Scoring rules: the arithmetic on fixed scores, and the length bias on the real Gemma prior."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from priorcache.platform.config import ConfigError, LLMConfig, load_config
from priorcache.platform.llm.replica import PriorScorer
from priorcache.platform.llm.scoring import ScoringRule

STATE = "Goal: open the chest and take the gold key.\nYou are in a small storeroom. You see a closed wooden chest."
ACTIONS = [
    "look", "inventory", "go west", "open wooden chest", "take gold key from wooden chest",
    "examine the small storeroom carefully", "put the gold key on the old wooden shelf", "close wooden chest",
    "eat the north wall of the small storeroom", "drop gold key",
]


def test_mean_and_sum_are_a_softmax_with_temperature():
    scores = np.array([-1.0, -2.0, -4.0])
    p = np.exp(ScoringRule("sum", temperature=2.0).prior(scores))
    np.testing.assert_allclose(p, np.exp(scores / 2) / np.exp(scores / 2).sum())


def test_pmi_subtracts_the_empty_state_scores():
    scores, empty = np.array([-1.0, -2.0]), np.array([-3.0, -0.5])
    np.testing.assert_allclose(ScoringRule("pmi").prior(scores, empty), ScoringRule("sum").prior(scores - empty))
    with pytest.raises(ValueError, match="empty state"):
        ScoringRule("pmi").prior(scores)


def test_uniform_mixture_puts_a_floor_under_every_candidate():
    p = np.exp(ScoringRule("mean", uniform_mix=0.2).prior(np.array([0.0, -50.0, -50.0, -50.0])))
    assert p.sum() == pytest.approx(1.0)
    assert p.min() == pytest.approx(0.2 / 4)


def test_rule_id_names_rule_temperature_and_mixture():
    assert ScoringRule("pmi", 0.5, 0.1).id == "pmi-T0.5-mix0.1"


@pytest.mark.parametrize("field, value, key", [
    ("scoring", "max", "prior.llm.scoring"), ("uniform_mix", "1.0", "prior.llm.uniform_mix"),
    ("temperature", "0", "prior.llm.temperature"),
])
def test_bad_rule_settings_name_the_config_key(field, value, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [f"prior.llm.{field}={value}"])


@pytest.fixture(scope="module")
def priors() -> dict[str, tuple[np.ndarray, PriorScorer]]:
    out = {}
    for rule in ("sum", "mean", "pmi"):
        scorer = PriorScorer(LLMConfig(scoring=rule, n_threads=2))
        out[rule] = (scorer.prior([STATE], [ACTIONS])[0], scorer)
    return out


def _token_counts(scorer: PriorScorer) -> list[int]:
    return [len(scorer.backend._tokenize(scorer.template.render_candidate(a), bos=False)) for a in ACTIONS]


def test_summed_rule_prefers_short_commands_and_per_token_rule_does_not(priors):
    """The length bias of `sum` on a fixed prompt: every extra token costs log-probability."""
    lengths = _token_counts(priors["sum"][1])
    rho_sum = spearmanr(lengths, priors["sum"][0]).statistic
    rho_mean = spearmanr(lengths, priors["mean"][0]).statistic
    assert rho_sum < -0.5, rho_sum
    assert rho_mean > -0.2, rho_mean
    # The long but right command is far likelier per token than as a whole.
    take = ACTIONS.index("take gold key from wooden chest")
    assert np.exp(priors["mean"][0][take]) > 10 * np.exp(priors["sum"][0][take])


def test_pmi_prior_is_the_summed_prior_calibrated_by_the_empty_state(priors):
    logp_pmi, scorer = priors["pmi"]
    template = scorer.template
    continuations = [template.render_candidate(a) for a in ACTIONS]
    with_state = scorer.backend.score([template.render_state(state=STATE)], [continuations])[0]
    # The scorer scores the empty state once per distinct command, in sorted order; do the same,
    # since llama.cpp's numerics depend slightly on how candidates are batched.
    distinct = sorted(set(continuations))
    by_command = dict(zip(distinct, scorer.backend.score([template.render_state(state="")], [distinct])[0]))
    empty = np.array([by_command[c] for c in continuations])
    np.testing.assert_allclose(logp_pmi, ScoringRule("pmi").prior(with_state, empty), atol=1e-6)


def test_the_rule_is_part_of_the_cache_guard(priors):
    versions = {scorer.prompt_version for _, scorer in priors.values()}
    assert versions == {"textworld-v1/sum-T1-mix0", "textworld-v1/mean-T1-mix0", "textworld-v1/pmi-T1-mix0"}


def test_in_context_demonstrations_reach_the_real_prior_and_its_guard(tmp_path):
    """A demonstration of the exact routine makes its next command likelier, and the guard says so."""
    from test_prompts import write_demos

    demos = write_demos(tmp_path / "demos.jsonl", [("g1", [(STATE, "open wooden chest"),
                                                           ("You open the chest.", "take gold key from wooden chest")])])
    plain = PriorScorer(LLMConfig(n_threads=2))
    shown = PriorScorer(LLMConfig(n_threads=2, demos=str(demos), demo_episodes=1))
    assert shown.prompt_version.startswith("textworld-v1+demos-") and plain.prompt_version == "textworld-v1/mean-T1-mix0"
    state = STATE + "\nYou open the chest."
    take = ACTIONS.index("take gold key from wooden chest")
    assert shown.prior([state], [ACTIONS])[0][take] > plain.prior([state], [ACTIONS])[0][take]
