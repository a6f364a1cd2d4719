"""The keyed cache's relevance gate: only a difference in what the served command names refuses."""

from priorcache.platform.cache.relevance import untouched, words


def test_a_numbered_object_is_one_word():
    assert words("Go to the fridge 1, then fridge 2.") == {"go": 1, "to": 1, "the": 1, "fridge 1": 1,
                                                         "then": 1, "fridge 2": 1}


def test_the_gate_refuses_only_changes_in_what_its_command_names():
    stored = "You are at the fridge 1.\nYou have looked in/on: sidetable 1.\n\nThe fridge 1 is closed."
    looked_at_fridge = stored.replace("sidetable 1.", "fridge 1, sidetable 1.")
    assert untouched(stored, looked_at_fridge, "go to countertop 1")
    # "fridge 1" is said once more: a command on the fridge may no longer be the LLM's choice
    assert not untouched(stored, looked_at_fridge, "open fridge 1")
    # a numbered object is one word ("fridge 2" is not "fridge 1"); ignored words never count
    assert untouched(stored, looked_at_fridge, "go to fridge 2")
    assert untouched(stored, stored.replace("at the", "at a"), "put mug 1 in/on the countertop 1")
