"""TextWorld game generation: keys, on-disk cache, atomic writes, determinism, dense rewards."""

import json

import pytest

from priorcache.envs import textworld_games
from priorcache.envs.textworld_games import GameSpec, ensure_game, game_path

SPEC = GameSpec(world_size=2, nb_objects=4, quest_length=2, seed=1)


@pytest.fixture(scope="session")
def games_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("games")


@pytest.fixture(scope="session")
def game_file(games_dir):
    return ensure_game(SPEC, games_dir)


def test_key_is_short_and_stable():
    assert SPEC.key == "tw-w2-o4-q2-s1"
    assert GameSpec(world_size=3, nb_objects=6, quest_length=4, seed=7).key == "tw-w3-o6-q4-s7"


@pytest.mark.parametrize("field", ["world_size", "quest_length", "seed"])
def test_invalid_spec_names_the_config_key(field):
    with pytest.raises(ValueError, match=rf"env\.game\.{field}"):
        GameSpec(**{field: -1})


def test_game_and_metadata_are_installed_without_leftovers(game_file, games_dir):
    assert game_file == game_path(SPEC, games_dir)
    assert sorted(p.name for p in games_dir.iterdir()) == [f"{SPEC.key}.json", f"{SPEC.key}.z8"]


def test_second_call_uses_the_cache(game_file, games_dir, monkeypatch):
    mtime = game_file.stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("ensure_game regenerated a cached game")

    monkeypatch.setattr(textworld_games, "compile_game", fail)
    assert ensure_game(SPEC, games_dir) == game_file
    assert game_file.stat().st_mtime_ns == mtime


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(textworld_games, "compile_game", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_game(SPEC, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_same_spec_generates_the_same_game(game_file, tmp_path):
    again = ensure_game(SPEC, tmp_path)
    metadata = [json.loads(p.with_suffix(".json").read_text()) for p in (again, game_file)]
    assert metadata[0] == metadata[1]


def test_rewards_are_dense(game_file):
    game = json.loads(game_file.with_suffix(".json").read_text())
    walkthrough = game["metadata"]["walkthrough"]
    assert len(walkthrough) == SPEC.quest_length
    quests = game["quests"]
    # One optional quest per proper prefix of the walkthrough, plus the main (winning) quest.
    assert [q["optional"] for q in quests] == [True] * (SPEC.quest_length - 1) + [False]
    assert sum(q["reward"] for q in quests) == SPEC.quest_length
