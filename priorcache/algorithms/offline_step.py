"""The training step every offline learner here shares: minibatches drawn from the dataset in memory.

RLlib's offline algorithms stream each minibatch through Ray Data (`OfflineData.sample`),
which costs minutes per iteration on two shared cores (`offline/replay.py` says what was
measured). `InMemoryOfflineStep` replaces an RLlib algorithm's `training_step`: it reads the
dataset once through RLlib's offline input (`self.offline_data.data`) into a
`TransitionTable`, then makes `dataset_num_iters_per_learner` updates per iteration on
minibatches of `train_batch_size_per_learner` transitions drawn uniformly, and logs the
learner's cumulative update time (the bench's "time to return") and transitions trained.

Used by discrete CQL (`cql_discrete.py`, over RLlib's DQN) and continuous CQL / CQL-Prior
(`cql_prior_continuous.py`, over RLlib's CQL): put it first among the bases.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from ray.rllib.utils.metrics import LEARNER_RESULTS, LEARNER_UPDATE_TIMER, OFFLINE_SAMPLING_TIMER, TIMERS

from priorcache.offline.replay import TransitionTable

TRAIN_TIME_KEY = "offline_train_time_s"
"""Result key: seconds spent in learner updates so far (no data loading, no evaluation)."""
TRANSITIONS_TRAINED_KEY = "offline_transitions_trained"
"""Result key: transitions drawn into minibatches so far."""


class InMemoryOfflineStep:
    """Mixin for an RLlib `Algorithm`: the in-memory offline `training_step` of the module docstring."""

    def setup(self, config: Any) -> None:
        super().setup(config)  # type: ignore[misc]
        self._transitions: TransitionTable | None = None
        self._rng = np.random.default_rng(self.config.seed)  # type: ignore[attr-defined]

    def training_step(self) -> None:
        metrics, config = self.metrics, self.config  # type: ignore[attr-defined]
        if self._transitions is None:
            with metrics.log_time((TIMERS, OFFLINE_SAMPLING_TIMER)):
                self._transitions = TransitionTable.from_dataset(self.offline_data.data)  # type: ignore[attr-defined]
        updates, size = config.dataset_num_iters_per_learner, config.train_batch_size_per_learner
        with metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            started = time.perf_counter()
            results = self.learner_group.update(  # type: ignore[attr-defined]
                batch=self._transitions.sample(updates * size, self._rng),
                minibatch_size=size, num_epochs=1, shuffle_batch_per_epoch=False)
            metrics.aggregate(results, key=LEARNER_RESULTS)
            metrics.log_value(TRAIN_TIME_KEY, time.perf_counter() - started, reduce="lifetime_sum")
            metrics.log_value(TRANSITIONS_TRAINED_KEY, updates * size, reduce="lifetime_sum")
