"""Offline RL: datasets recorded in RLlib's offline format, and what reads them.

- `behaviour`: the policies that play the datasets (random, medium, expert).
- `dataset`: `priorcache offline dataset`: play a behaviour policy through the platform's env
  pipeline (LLM prior in the observations), write RLlib episodes to parquet, card the result.
- `bench`: `priorcache offline bench`: CQL vs CQL-Prior on the same datasets and seeds ->
  docs/results/offline.{md,json}.

The learners are in `priorcache/algorithms/cql_discrete.py`.
"""
