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
