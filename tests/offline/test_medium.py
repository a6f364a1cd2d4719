"""The medium behaviour policy: an online agent trained without the prior, stopped early."""

from pathlib import Path

import pytest

from priorcache.offline.medium import medium_config
from priorcache.platform.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]
TEXTWORLD_CQL = REPO / "experiments" / "textworld_cql_prior.yaml"


def test_medium_trains_the_no_prior_counterpart_on_the_datasets_own_env():
    cfg = load_config(TEXTWORLD_CQL, ["env.max_steps=17"])
    medium = medium_config(cfg)
    assert cfg.offline.medium_experiment == "experiments/offline/textworld_medium.yaml"
    assert medium.algorithm.name == "ppo" and medium.train.iterations == 2  # the medium YAML's budget
    assert medium.env == cfg.env and medium.env.max_steps == 17
    assert medium.eval.videos == 0 and medium.name == "textworld_cql_prior-medium-behaviour"
    # An online experiment with the prior trains its no-prior counterpart.
    ppo_prior = "offline.medium_experiment=experiments/textworld_ppo_prior.yaml"
    with_prior = medium_config(load_config(TEXTWORLD_CQL, [ppo_prior]))
    assert with_prior.algorithm.name == "ppo"
    continuous = medium_config(load_config(REPO / "experiments" / "halfcheetah_cql_prior.yaml"))
    assert continuous.algorithm.name == "sac" and continuous.env.name == "halfcheetah"


@pytest.mark.parametrize("override, message", [
    ("offline.medium_experiment=", "'offline.medium_experiment' is empty"),
    ("offline.medium_experiment=experiments/nope.yaml", "nope.yaml does not exist"),
    ("offline.medium_experiment=experiments/textworld_cql_prior.yaml", "trains 'cql_prior', which is not an online"),
    ("offline.medium_experiment=experiments/offline/halfcheetah_medium.yaml", "halfcheetah_medium.yaml on this env"),
])
def test_a_medium_experiment_that_cannot_train_is_named(override, message):
    with pytest.raises(ConfigError, match=message):
        medium_config(load_config(TEXTWORLD_CQL, [override]))


def test_a_medium_dataset_is_played_by_an_agent_trained_for_it(ray_session, tmp_path):
    """Real path: PPO trains one iteration on a 2-step game in its own MLflow run, then records."""
    import mlflow
    import yaml

    from priorcache.offline.dataset import run_dataset

    medium = yaml.safe_load((REPO / "experiments" / "offline" / "textworld_medium.yaml").read_text())
    medium["algorithm"].update(train_batch_size=200, minibatch_size=50, num_epochs=2)
    medium["train"]["iterations"] = 1
    medium["eval"]["episodes"] = 2
    (tmp_path / "medium.yaml").write_text(yaml.safe_dump(medium))
    overrides = [
        f"output_dir={tmp_path / 'runs'}", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"env.games_dir={REPO / '.cache' / 'games'}", "env.game.world_size=2", "env.game.nb_objects=4",
        "env.game.quest_length=2", "env.max_steps=10", "prior.cache.namespace=medium-test",
        "offline.quality=medium", "offline.episodes=2", f"offline.medium_experiment={tmp_path / 'medium.yaml'}",
        f"offline.dataset={tmp_path / 'dataset'}",
    ]
    folder, card = run_dataset(TEXTWORLD_CQL, overrides, progress=False)
    assert card.quality == "medium" and card.episodes == 2
    assert card.behaviour.startswith("ppo without the prior, trained 1 iterations (200 env steps)")
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              "tags.offline_role = 'medium_behaviour'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].info.run_id in card.behaviour
