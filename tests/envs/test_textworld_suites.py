"""TextWorld suites: generated train/eval splits, caching, walkthrough wins, multi-game envs, errors."""

import json

import pytest
from test_textworld_env import walkthrough_of  # pytest puts this folder on sys.path

from priorcache.envs import textworld_games
from priorcache.envs.registry import make_text_env, resolve_env
from priorcache.envs.textworld_env import TextWorldEnv
from priorcache.envs.textworld_suites import LEVEL_SETTINGS, suite_games
from priorcache.platform.config import EnvConfig, SuiteConfig

FAMILIES = tuple(LEVEL_SETTINGS)
# Small splits keep generation (~1-1.5 s a game) cheap: 2 train and 1 eval game per family.
CONFIGS = {family: SuiteConfig(family=family, level=1, train_games=2, eval_games=1, seed=1) for family in FAMILIES}
pytestmark = pytest.mark.filterwarnings("ignore::jericho.UnsupportedGameWarning")


@pytest.fixture(scope="module")
def games_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("suites")


@pytest.fixture(scope="module")
def splits(games_dir):
    """family -> {"train": [...], "eval": [...]}, generated once for the module."""
    return {
        family: {role: suite_games(cfg, games_dir, role) for role in ("train", "eval")}
        for family, cfg in CONFIGS.items()
    }


def play(env, commands, **reset_kwargs):
    obs, info = env.reset(**reset_kwargs)
    rewards = []
    for command in commands:
        obs, reward, terminated, truncated, info = env.step(obs["candidates"].index(command))
        rewards.append(reward)
    return rewards, terminated, info


@pytest.mark.parametrize("family", FAMILIES)
def test_splits_are_named_by_family_level_seed_and_disjoint(splits, family):
    train, held_out = splits[family]["train"], splits[family]["eval"]
    assert [g.name for g in train] == [f"suite-{family}-l1-s1000.z8", f"suite-{family}-l1-s1001.z8"]
    assert [g.name for g in held_out] == [f"suite-{family}-l1-s1500.z8"]
    games = train + held_out
    assert all(g.is_file() and g.with_suffix(".json").is_file() for g in games)
    # Different games, not only different names: the generation seeds differ in the metadata...
    seeds = {json.dumps(json.loads(g.with_suffix(".json").read_text())["metadata"]["seeds"]) for g in games}
    assert len(seeds) == 3
    # ...and the stories themselves differ.
    assert len({g.read_bytes() for g in games}) == 3


def test_second_call_regenerates_nothing(splits, games_dir, monkeypatch):
    files = sorted(games_dir.iterdir())
    assert all(f.suffix in (".z8", ".json") for f in files)  # no temp folders left behind
    assert len(files) == 2 * 3 * len(FAMILIES)
    mtimes = {f: f.stat().st_mtime_ns for f in files}

    def fail(*args, **kwargs):
        raise AssertionError("suite_games regenerated a cached game")

    monkeypatch.setattr(textworld_games, "compile_game", fail)
    for family, cfg in CONFIGS.items():
        for role in ("train", "eval"):
            assert suite_games(cfg, games_dir, role) == splits[family][role]
    assert {f: f.stat().st_mtime_ns for f in sorted(games_dir.iterdir())} == mtimes


def test_same_seed_generates_the_same_game(splits, tmp_path):
    cfg = SuiteConfig(family="coin_collector", level=1, train_games=1, eval_games=1, seed=1)
    (again,) = suite_games(cfg, tmp_path, "eval")
    (first,) = splits["coin_collector"]["eval"]
    assert again.with_suffix(".json").read_text() == first.with_suffix(".json").read_text()


def test_simple_eval_games_use_textworlds_held_out_foods(splits):
    metadata = [json.loads(g.with_suffix(".json").read_text())["metadata"] for g in splits["simple"]["eval"]]
    # TextWorld's `test` games rename the food to one of garlic, kiwi or carrot.
    assert all(m["uuid"].startswith("tw-simple-rDense+gDetailed+test-") for m in metadata)


@pytest.mark.parametrize("family", FAMILIES)
def test_walkthrough_wins(splits, family):
    (game,) = splits[family]["eval"]
    walkthrough = walkthrough_of(game)
    env = TextWorldEnv(game, max_actions=64)  # cooking games offer up to ~40 commands at level 1
    try:
        rewards, terminated, info = play(env, walkthrough)
    finally:
        env.close()
    assert terminated and info["won"] and not info["lost"]
    assert info["steps"] == len(walkthrough) <= 50
    assert sum(rewards) == info["score"] == info["max_score"] >= 1


def test_game_index_selects_the_game(splits):
    g1, g2 = splits["simple"]["train"]
    env = TextWorldEnv([g1, g2])
    single = TextWorldEnv(g2)
    try:
        assert env.game_file == g1  # before the first reset
        obs, info = env.reset(options={"game_index": 1})
        assert env.game_file == g2
        assert (obs, info) == single.reset()
        walkthrough = walkthrough_of(g2)
        assert walkthrough != walkthrough_of(g1)
        _, terminated, info = play(env, walkthrough, options={"game_index": 1})
        assert terminated and info["won"]
        env.reset(options={"game_index": 0})
        assert env.game_file == g1
        for bad in (2, -1, "1", 1.0):
            with pytest.raises(ValueError, match="game_index"):
                env.reset(options={"game_index": bad})
    finally:
        env.close()
        single.close()


def test_reset_seed_picks_games_deterministically(splits):
    games = splits["coin_collector"]["train"] + splits["coin_collector"]["eval"]
    envs = [TextWorldEnv(games), TextWorldEnv(games)]
    try:
        picks = []
        for env in envs:
            picked = []
            for seed in range(12):
                obs, _ = env.reset(seed=seed)
                picked.append((env.game_file, obs))
                env.reset()  # unseeded resets continue np_random and do not disturb seeded ones
            picks.append(picked)
    finally:
        for env in envs:
            env.close()
    assert picks[0] == picks[1]
    assert {game for game, _ in picks[0]} == set(games)


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"family": "zork"}, "env.suite.family"),
        ({"family": None}, "env.suite.family"),
        ({"level": 0}, "env.suite.level"),
        ({"level": 4}, "env.suite.level"),
        ({"level": "1"}, "env.suite.level"),
        ({"level": True}, "env.suite.level"),
        ({"train_games": 0}, "env.suite.train_games"),
        ({"eval_games": 501}, "env.suite.eval_games"),
        ({"seed": -1}, "env.suite.seed"),
    ],
)
def test_bad_suite_config_names_the_key(tmp_path, changes, key):
    cfg = SuiteConfig(**{**vars(CONFIGS["coin_collector"]), **changes})
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        for role in ("train", "eval"):
            suite_games(cfg, tmp_path, role)
    assert list(tmp_path.iterdir()) == []


def test_bad_role(tmp_path):
    with pytest.raises(ValueError, match="train, eval"):
        suite_games(CONFIGS["coin_collector"], tmp_path, "test")


def test_registry_builds_the_suite_env_per_role(splits, games_dir):
    cfg = resolve_env(EnvConfig(name="textworld_suite", suite=CONFIGS["coin_collector"], games_dir=str(games_dir)))
    for role in ("train", "eval"):
        env = make_text_env(cfg, role)
        try:
            assert list(env.game_files) == splits["coin_collector"][role]
            obs, _ = env.reset(seed=0)
            assert obs["candidates"]
        finally:
            env.close()
