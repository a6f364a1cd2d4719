"""An offline dataset held in memory, sampled uniformly into RLlib train batches.

RLlib's default offline sampling streams every minibatch through a Ray Data pipeline
(`OfflineData.sample` -> `OfflinePreLearner` actors -> iterator), which restarts per pass
over the data; on a small dataset and two shared cores that cost minutes per iteration
(measured 2026-11-27: three iterations of 20 updates on 17 transitions did not finish in 13
minutes). Datasets here are small (thousands of transitions), so the discrete CQL learner
reads the dataset once, through the same RLlib offline input (the algorithm's
`OfflineData.data`), and draws its minibatches from memory (`algorithms/offline_step.py`).
Observations are Dicts of arrays (the text envs' `PriorFeaturesWrapper`) or flat arrays (the
continuous envs' `ContinuousPriorWrapper`); actions are slots (int) or Box vectors (float32).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

from priorcache.offline.dataset import unpack_rows


class TransitionTable:
    """The transitions of an offline dataset as stacked arrays (observations: arrays or Dicts of arrays)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            raise ValueError("the offline dataset has no transitions; record it again")
        self.size = len(rows)
        self._columns: dict[str, Any] = {
            Columns.OBS: _stack([row[Columns.OBS] for row in rows]),
            Columns.NEXT_OBS: _stack([row[Columns.NEXT_OBS] for row in rows]),
            Columns.ACTIONS: _actions([row[Columns.ACTIONS] for row in rows]),
            Columns.REWARDS: np.array([row[Columns.REWARDS] for row in rows], np.float32),
            Columns.TERMINATEDS: np.array([row[Columns.TERMINATEDS] for row in rows], np.float32),
        }

    @classmethod
    def from_dataset(cls, data: Any) -> TransitionTable:
        """All rows of a Ray Data dataset read by RLlib's offline input (`OfflineData.data`)."""
        return cls(unpack_rows(data.take_all()))

    def sample(self, size: int, rng: np.random.Generator) -> MultiAgentBatch:
        """`size` transitions drawn uniformly with replacement, as a train batch of the default module."""
        index = rng.integers(self.size, size=size)
        columns = {
            key: {k: v[index] for k, v in value.items()} if isinstance(value, dict) else value[index]
            for key, value in self._columns.items()
        }
        return MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(columns)}, env_steps=size)


def _stack(items: list[Any]) -> np.ndarray | dict[str, np.ndarray]:
    if isinstance(items[0], dict):
        return {key: np.stack([item[key] for item in items]) for key in items[0]}
    return np.stack(items).astype(np.float32)


def _actions(items: list[Any]) -> np.ndarray:
    """Slots as int64 (discrete), Box actions as float32 (continuous)."""
    first = np.asarray(items[0])
    return np.stack(items).astype(np.float32 if first.ndim else np.int64)
