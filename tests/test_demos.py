"""priorcache demos: experts win through the text envs, recorded states are the envs' own,
cards match their files, the loader checks every line, inadmissible commands are never recorded;
with a learner (DAgger) the expert labels the states the learner's commands lead to."""

import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest

from priorcache import demos
from priorcache.cli import main
from priorcache.demos import DemoFileError, load_demos, resolve_target, run_demos
from priorcache.envs.alfworld_env import alfworld_data_dir
from priorcache.envs.experts import MAX_SKIPS_IN_A_ROW, BabyAIExpert
from priorcache.envs.registry import make_text_env
from priorcache.platform.config import load_config

REPO = Path(__file__).resolve().parents[1]
GAMES = f"env.games_dir={REPO / '.cache' / 'games'}"  # the generated games other tests use too
NO_ALFWORLD = not (alfworld_data_dir() / "valid_train").is_dir()
# One game (or seeded level) per domain; each fixture run plays one episode.
OVERRIDES = {
    "alfworld": ["env.alfworld.max_games=1"],
    "textworld": [GAMES],
    "twsuite": [GAMES, "env.suite.train_games=1"],
    "babyai": [],
    "webshop": [],
}
pytestmark = pytest.mark.filterwarnings("ignore::jericho.UnsupportedGameWarning")


@pytest.fixture(scope="module", params=[
    pytest.param(d, marks=pytest.mark.skipif(d == "alfworld" and NO_ALFWORLD, reason="no ALFWorld data"))
    for d in OVERRIDES
])
def dataset(request, tmp_path_factory):
    domain = request.param
    out_dir, card = run_demos(domain, OVERRIDES[domain], out=tmp_path_factory.mktemp(domain),
                              episodes=1, progress=False)
    return domain, out_dir, card


def test_expert_wins_with_candidate_actions(dataset):
    domain, out_dir, card = dataset
    steps = load_demos(out_dir)
    cfg = load_config(resolve_target(domain)[0], OVERRIDES[domain])
    assert card.episodes == card.episodes_won == card.episodes_kept == 1 and card.win_rate == 1.0
    assert steps and [s.step for s in steps] == list(range(len(steps)))
    assert {(s.domain, s.split, s.game, s.episode, s.won) for s in steps} == {
        (cfg.env.name, steps[0].split, steps[0].game, 0, True)}
    assert all(s.action in s.candidates for s in steps)


def test_states_are_what_the_env_observes(dataset):
    domain, out_dir, _ = dataset
    steps = load_demos(out_dir / demos.DEMOS_FILE)
    cfg = load_config(resolve_target(domain)[0], OVERRIDES[domain])
    env = make_text_env(cfg.env, "train")
    try:
        options = {"game_index": 0} if len(getattr(env, "game_files", ())) > 1 else None
        obs, _ = env.reset(seed=cfg.seed, options=options)
        for step in steps:
            assert (step.state, step.candidates) == (obs["state"], tuple(obs["candidates"]))
            obs, _, terminated, truncated, info = env.step(obs["candidates"].index(step.action))
        assert terminated and info["won"]
    finally:
        env.close()


def test_card_matches_the_file(dataset):
    domain, out_dir, card = dataset
    lines = (out_dir / demos.DEMOS_FILE).read_text().splitlines()
    assert json.loads((out_dir / demos.CARD_JSON).read_text()) == asdict(card)
    assert card.steps == len(lines) and card.games == 1
    assert card.inadmissible == card.skipped == card.episodes_dropped == card.steps_dropped == 0
    assert card.command.startswith(f"priorcache demos {domain} --out ") and card.licence
    md = (out_dir / demos.CARD_MD).read_text()
    assert f"| steps (lines) in the file | {len(lines)} |" in md and card.command in md
    # No temporary files left behind.
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([demos.DEMOS_FILE, demos.CARD_JSON, demos.CARD_MD])


def test_inadmissible_expert_commands_are_counted_never_recorded(tmp_path):
    # Three action slots (drop, go forward, pick up): the bot soon needs to turn.
    _, card = run_demos("babyai", ["env.max_actions=3"], out=tmp_path / "dropped", episodes=2, progress=False)
    assert card.inadmissible == card.episodes_dropped == 2 and card.episodes_won == card.steps == 0
    assert sum(card.inadmissible_commands.values()) == 2
    assert set(card.inadmissible_commands) <= {"toggle", "turn left", "turn right"}
    assert load_demos(tmp_path / "dropped") == []
    _, card = run_demos("babyai", ["env.max_actions=3"], out=tmp_path / "kept", episodes=2,
                        keep_lost=True, progress=False)
    kept = load_demos(tmp_path / "kept")
    assert card.episodes_kept == 2 and card.steps == len(kept) and card.steps_dropped == 0
    assert all(not s.won and s.action in s.candidates for s in kept)


class Hesitant(BabyAIExpert):
    """Asks for a command the env does not offer before each real one, and can skip it."""

    def __init__(self, stubborn=False):
        super().__init__()
        self.stubborn, self.hesitated = stubborn, False

    def act(self, obs, info):
        self.hesitated = self.stubborn or not self.hesitated
        return "wait" if self.hesitated else super().act(obs, info)

    def skip(self):
        return True


def test_skippable_commands_are_counted_and_never_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(demos, "expert_for", lambda name: Hesitant())
    _, card = run_demos("babyai", [], out=tmp_path / "hesitant", episodes=2, progress=False)
    assert card.episodes_won == 2 and card.skipped == card.steps > 0 and card.inadmissible == 0
    assert card.skipped_commands == {"wait": card.steps}
    assert "wait" not in {s.action for s in load_demos(tmp_path / "hesitant")}
    monkeypatch.setattr(demos, "expert_for", lambda name: Hesitant(stubborn=True))
    _, card = run_demos("babyai", [], out=tmp_path / "stubborn", episodes=1, progress=False)
    assert card.skipped == MAX_SKIPS_IN_A_ROW and card.inadmissible_commands == {"wait": 1}
    assert card.episodes_won == card.steps == 0


def test_load_demos_names_the_broken_line(dataset, tmp_path):
    _, out_dir, _ = dataset
    good = (out_dir / demos.DEMOS_FILE).read_text().splitlines()[0]
    record = json.loads(good)
    broken = {
        "not JSON": good[:-1],
        "fields must be exactly": json.dumps({k: v for k, v in record.items() if k != "won"}),
        "'won' must be bool": json.dumps({**record, "won": 1}),
        "'step' must be int": json.dumps({**record, "step": True}),
        "not one of its candidates": json.dumps({**record, "action": "dance"}),
    }
    path = tmp_path / "demos.jsonl"
    for message, line in broken.items():
        path.write_text(f"{good}\n{line}\n")
        with pytest.raises(DemoFileError, match=rf"demos\.jsonl, line 2: .*{message}"):
            load_demos(path)
    with pytest.raises(DemoFileError, match="does not exist"):
        load_demos(tmp_path / "nowhere")


def test_interrupted_write_leaves_no_card(dataset, tmp_path, monkeypatch):
    _, out_dir, card = dataset
    steps = load_demos(out_dir)
    demos.write_dataset(tmp_path, steps, card)
    replace = os.replace

    def fail_on_cards(src, dst):
        if Path(dst).name != demos.DEMOS_FILE:
            raise KeyboardInterrupt
        replace(src, dst)

    monkeypatch.setattr(demos.os, "replace", fail_on_cards)
    with pytest.raises(KeyboardInterrupt):
        demos.write_dataset(tmp_path, steps[:1], card)
    assert not (tmp_path / demos.CARD_JSON).exists() and not (tmp_path / demos.CARD_MD).exists()


def test_cli(tmp_path, capsys):
    assert main(["demos", "babyai", "--out", str(tmp_path), "--episodes", "2"]) == 0
    card = json.loads((tmp_path / demos.CARD_JSON).read_text())
    assert card["episodes"] == 2 and card["steps"] == len(load_demos(tmp_path))
    assert str(tmp_path) in capsys.readouterr().out
    for argv, named in [
        (["demos", "alfwrld"], "neither a domain nor an experiment YAML"),
        (["demos", "babyai", "--episodes", "0"], "--episodes must be >= 1"),
        (["demos", "babyai", "eval.seed=5", "--episodes", "10"], "'eval.seed'"),
        (["demos", "babyai", "env.max_stepz=3"], "env.max_stepz"),
        (["demos", "babyai", "--learner"], "--learner works for alfworld"),
        (["demos", "alfworld", "--learner", "--beta", "1"], "0 <= beta < 1"),
    ]:
        assert main([*argv, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err
        assert named in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()


class FirstCandidate:
    """A learner that plays the first candidate: mostly not the expert's command."""

    description = "first candidate"

    def __init__(self):
        self.seen = []

    def __call__(self, state, candidates):
        self.seen.append(state)
        return candidates[0]


@pytest.mark.skipif(NO_ALFWORLD, reason="no ALFWorld data")
def test_learner_rollouts_are_labelled_by_the_expert(tmp_path):
    cfg = load_config(resolve_target("alfworld")[0], ["env.alfworld.max_games=1", "env.max_steps=8"])
    learner = FirstCandidate()
    steps, card = demos.collect_demos(cfg, 1, learner=learner, beta=0.0)
    # The learner played every step; the expert followed (a lost step would have raised) and labelled each.
    assert card.learner == "first candidate" and card.beta == 0.0
    assert card.learner_steps == len(steps) == len(learner.seen) == 8 and card.episodes_kept == 1
    assert [s.state for s in steps] == learner.seen
    assert card.learner_agreement == sum(s.action == s.candidates[0] for s in steps) / 8 < 1
    # The states are those the learner's commands lead to, in the env the prior sees.
    env = make_text_env(cfg.env, "train")
    try:
        obs, _ = env.reset(seed=cfg.seed)
        for step in steps:
            assert (step.state, step.candidates) == (obs["state"], tuple(obs["candidates"]))
            obs, *_ = env.step(0)
    finally:
        env.close()
    # With beta = 1/2 the expert plays part of the steps, drawn from the episode's seed.
    steps, card = demos.collect_demos(cfg, 1, learner=FirstCandidate(), beta=0.5)
    assert 0 < card.learner_steps < len(steps)


@pytest.mark.skipif(NO_ALFWORLD, reason="no ALFWorld data")
def test_greedy_prior_learner_on_a_real_game(tmp_path):
    """The Direct-LLM learner with the real Gemma, served the shipped adapter, through the CLI."""
    adapter = REPO / "priorcache/platform/llm/adapters/alfworld-lora.gguf"
    assert main(["demos", "alfworld", "env.alfworld.max_games=1", "env.max_steps=4", "prior.llm.n_threads=1",
                 f"prior.llm.adapter_path={adapter}", "--learner", "--beta", "0", "--episodes", "1",
                 "--out", str(tmp_path)]) == 0
    card = json.loads((tmp_path / demos.CARD_JSON).read_text())
    assert card["learner"].startswith("greedy prior (Direct-LLM) of gemma-3-270m") and "+lora-" in card["learner"]
    assert card["learner_steps"] == card["steps"] == len(load_demos(tmp_path)) == 4
    assert "--learner --beta 0.0" in card["command"]
    assert "| played by (DAgger: the expert labels its states) |" in (tmp_path / demos.CARD_MD).read_text()
