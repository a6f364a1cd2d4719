"""Config loading: YAML + overrides onto the typed schema; errors name the key."""

from pathlib import Path

import pytest

from priorcache.platform.config import ConfigError, ExperimentConfig, from_dict, load_config, to_dict, to_yaml

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def test_defaults_and_overrides():
    cfg = load_config(None, ["train.iterations=3", "prior.cache.threshold=0.9", "prior.cache.mode=exact"])
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.train.iterations == 3 and cfg.prior.cache.threshold == 0.9 and cfg.prior.cache.mode == "exact"


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_experiments_load(path):
    load_config(path)


@pytest.mark.parametrize("override, key", [
    ("prior.cache.treshold=0.9", "prior.cache.treshold"),
    ("train.iterations=many", "train.iterations"),
    ("prior.cache.threshold=1.5", "prior.cache.threshold"),
    ("prior.cache.mode=fuzzy", "prior.cache.mode"),
    ("algorithm.name=sac", "algorithm.name"),
    ("env.max_steps=0", "env.max_steps"),
    ("env.game_file=/nonexistent/game.z8", "env.game_file"),
    ("prior.llm.model_path=/nonexistent/model.gguf", "prior.llm.model_path"),
    ("prior.llm.fallback=last", "prior.llm.fallback"),
    ("prior.llm.max_replica_restarts=-1", "prior.llm.max_replica_restarts"),
    ("prior.cache.max_restarts=-1", "prior.cache.max_restarts"),
    ("prior.cache.snapshot_every_s=-5", "prior.cache.snapshot_every_s"),
    ("prior.cache.snapshot_path=/nonexistent/dir/cache_snapshot.npz", "prior.cache.snapshot_path"),
])
def test_bad_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [override])


def test_override_without_equals_sign():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["train.iterations"])


def test_bad_yaml_key_is_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("prior:\n  cache:\n    capacityy: 10\n")
    with pytest.raises(ConfigError, match=r"prior\.cache\.capacityy"):
        load_config(path)


def test_missing_experiment_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("experiments/nope.yaml")


def test_round_trip_through_plain_dicts():
    cfg = load_config(None, ["prior.cache.capacity=7"])
    assert from_dict(ExperimentConfig, to_dict(cfg)) == cfg


def test_a_run_folders_config_yaml_loads_back_to_the_same_config(tmp_path):
    """What a run writes (`to_yaml`, infinity as YAML's `.inf`) is what a resumed run reads."""
    cfg = load_config(None, ["prior.cache.capacity=7", "prior.cache.decisive_margin=.inf"])
    assert cfg.prior.cache.decisive_margin == float("inf")
    path = tmp_path / "config.yaml"
    path.write_text(to_yaml(cfg))
    assert "decisive_margin: .inf" in path.read_text() and load_config(path) == cfg


def test_yaml_boolean_spellings_stay_text_in_text_fields(tmp_path):
    """Plain YAML reads `off` as False; `prior.cache.mode: off` must stay "off"."""
    path = tmp_path / "exp.yaml"
    path.write_text("prior:\n  cache: {mode: off}\neval: {greedy: yes}\n")
    assert load_config(path).prior.cache.mode == "off"
    assert load_config(path).eval.greedy is True
    assert load_config(None, ["prior.cache.mode=off"]).prior.cache.mode == "off"


def test_cooking_suites_past_level_1_need_64_action_slots():
    with pytest.raises(ConfigError, match="env.max_actions"):
        load_config(None, ["env.name=textworld_suite", "env.suite.family=cooking", "env.suite.level=3"])
    assert load_config(None, ["env.name=textworld_suite", "env.suite.family=cooking", "env.suite.level=3",
                              "env.max_actions=64"]).env.max_actions == 64


def test_yaml_syntax_error_names_the_file_and_line(tmp_path):
    from priorcache.eval_suite import load_suite

    suite = tmp_path / "suite.yaml"
    suite.write_text("name: s\nvariants:\n  tuned: [prior.llm.adapter_path=adapters/{domain}.gguf]\n")
    with pytest.raises(ConfigError, match=r"suite.yaml: line 3, column \d+: not valid YAML .*quote"):
        load_suite(suite)
