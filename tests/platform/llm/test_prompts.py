"""Versioned prompt templates shipped as package data."""

import dataclasses

import pytest

from priorcache.platform.llm.prompts import PromptTemplate, available_prompts, load_prompt


def test_textworld_v1_loads_and_renders():
    template = load_prompt("textworld-v1")
    assert template.id == "textworld-v1"
    assert (template.name, template.version) == ("textworld", 1)
    assert template.prefix.endswith("\n\n")
    prompt = template.render_state(state="Goal: eat the apple.\nYou are carrying an apple.")
    assert prompt == "Goal: eat the apple.\nYou are carrying an apple.\n>"
    # The prompt ends at ">" and candidates start with a space: the tokenizer splits there
    # anyway, so candidates tokenized on their own are the tokens of the running text.
    assert template.render_candidate("eat apple") == " eat apple"


def test_shipped_ids_match_their_files():
    assert "textworld-v1" in available_prompts()
    for prompt_id in available_prompts():
        assert load_prompt(prompt_id).id == prompt_id


def test_unknown_prompt_names_the_key_and_lists_the_ids():
    with pytest.raises(ValueError, match="prior.llm.prompt") as err:
        load_prompt("textworld-v999")
    assert "textworld-v999" in str(err.value)
    assert "textworld-v1" in str(err.value)


def test_templates_are_immutable():
    template = PromptTemplate(name="t", version=2, prefix="", state="{state}", candidate=" {action}")
    assert template.id == "t-v2"
    with pytest.raises(dataclasses.FrozenInstanceError):
        template.prefix = "changed"  # type: ignore[misc]


def write_demos(path, episodes):
    """A demos.jsonl in the schema of `priorcache demos` (see priorcache/demos.py)."""
    import json

    lines = []
    for episode, (game, states_actions) in enumerate(episodes):
        for step, (state, action) in enumerate(states_actions):
            lines.append(json.dumps({"domain": "textworld", "split": "train", "game": game, "episode": episode,
                                     "step": step, "state": state, "candidates": [action, "look"],
                                     "action": action, "won": True}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_demonstrations_extend_the_prefix_and_the_id(tmp_path):
    from priorcache.platform.llm.prompt_context import demonstration_episodes

    demos = write_demos(tmp_path / "demos.jsonl", [
        ("g1", [("Goal: open the box.\nYou see a box.", "open box"), ("You open the box.", "take key")]),
        ("g2", [("Goal: eat.\nYou see an apple.", "eat apple")]),
        ("g3", [("Goal: go north.\nA door is north.", "go north")]),
    ])
    template = load_prompt("textworld-v1")
    episodes = demonstration_episodes(demos, 2)
    assert episodes == [("Goal: open the box.\nYou see a box.", ["open box", "take key"]),
                        ("Goal: eat.\nYou see an apple.", ["eat apple"])]
    shown = template.with_demonstrations(episodes)
    assert shown.prefix == template.prefix + "Goal: open the box.\nYou see a box.\n> open box\n> take key\n\n" \
        "Goal: eat.\nYou see an apple.\n> eat apple\n\n"
    assert shown.id.startswith("textworld-v1+demos-") and shown.id != template.id
    assert template.with_demonstrations(demonstration_episodes(demos, 3)).id != shown.id
    assert shown.render_state(state="s") == template.render_state(state="s")
    assert template.with_demonstrations([]) is template


def test_demos_path_is_made_absolute_and_a_missing_one_names_the_key(tmp_path, monkeypatch):
    from priorcache.platform.config import ConfigError
    from priorcache.platform.llm.prompt_context import resolve_demos

    monkeypatch.chdir(tmp_path)
    write_demos(tmp_path / "demos.jsonl", [("g", [("Goal: eat.", "eat apple")])])
    assert resolve_demos("demos.jsonl") == str(tmp_path / "demos.jsonl")
    assert resolve_demos("") == ""
    with pytest.raises(ConfigError, match=r"prior\.llm\.demos.*priorcache demos"):
        resolve_demos("nope.jsonl")
