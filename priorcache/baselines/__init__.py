"""Baseline agents that act with the LLM alone, without RL (results are shown beside the *-Prior family)."""
