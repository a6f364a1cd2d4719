"""priorcache: RL with LLM-derived priors through an adaptive semantic cache."""
