"""How often a prior's most likely command is the one a scripted expert would play, step by step.

A prior carries information when its argmax is the expert's command; a cache that keeps that
information serves priors that agree with the expert as often as fresh ones do. On ALFWorld a
sampling agent wins no episode in the cache benchmark's budget, so success cannot tell a cache
that loses the prior's information from one that keeps it; agreement with the expert can, on
every step.

`ExpertAgreement` follows another player's trajectory with an expert that replans from
wherever that player leads (`Expert.follow`: ALFWorld's handcoded expert, `FOLLOWING_EXPERTS`):
before each step it asks the expert for its command in the current state and compares it with
the argmax of the prior the player was served; after the step it tells the expert which command
was played. When the expert's command is not among the candidates and cannot be skipped, the
rest of the episode goes unlabelled (counted in `unlabelled_episodes`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from priorcache.envs.experts import FOLLOWING_EXPERTS, expert_for, playable_command


class ExpertAgreement:
    """Counts, over the states of an env's episodes, how often the served prior's argmax is the expert's command."""

    def __init__(self, env_name: str) -> None:
        if env_name not in FOLLOWING_EXPERTS:
            raise ValueError(f"config key 'env.name': no expert that follows another player for {env_name!r}; "
                             f"expert agreement is measured on {', '.join(FOLLOWING_EXPERTS)}")
        self._expert = expert_for(env_name)
        self._command: str | None = None
        self._lost = False
        self.labelled = 0
        """States the expert labelled."""
        self.agreed = 0
        """Of those, states where the prior's argmax was the expert's command."""
        self.unlabelled_episodes = 0
        """Episodes whose labels stopped early (the expert's command was not playable)."""

    @property
    def rate(self) -> float | None:
        """Share of labelled states where the prior agreed with the expert (None before any label)."""
        return self.agreed / self.labelled if self.labelled else None

    def reset(self, env: gym.Env, info: dict[str, Any], seed: int) -> None:
        """Start following the episode `env` has just reset to (`info`: its reset info)."""
        self._expert.reset(env, {}, info, seed=seed)
        self._command = None
        self._lost = False

    def observe(self, candidates: tuple[str, ...], prior_logp: np.ndarray, info: dict[str, Any]) -> None:
        """Label the current state, whose candidates and served prior (over them) are given."""
        if self._lost:
            return
        command, _ = playable_command(self._expert, {"candidates": candidates}, info)
        if command not in candidates:
            self._lost = True
            self.unlabelled_episodes += 1
            return
        self._command = command
        self.labelled += 1
        self.agreed += int(np.argmax(prior_logp[:len(candidates)])) == candidates.index(command)

    def played(self, command: str) -> None:
        """The player played `command` in the state `observe` labelled last."""
        if not self._lost and command != self._command:
            self._expert.follow(command)

    def close(self) -> None:
        self._expert.close()
