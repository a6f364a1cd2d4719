"""The keyed cache's relevance gate: only a difference in what the served command names refuses."""

import numpy as np

from priorcache.platform.cache.relevance import decisive, untouched, words


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


def test_an_answer_is_decisive_when_its_top_command_leads_by_the_margin():
    assert decisive(np.log([0.6, 0.3, 0.1]), 0.5)  # leads by log 2 = 0.69 nats
    assert not decisive(np.log([0.6, 0.3, 0.1]), 0.7)
    assert not decisive(np.log([0.4, 0.4, 0.2]), 0.1)  # a tie leads by nothing
    assert decisive(np.log([1.0]), 5.0)  # nothing to flip to
