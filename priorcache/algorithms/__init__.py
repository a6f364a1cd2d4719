"""RLlib algorithms that act by posterior sampling with an LLM prior (the *-Prior family)."""
