"""Learned state → text propagation: a contrastive encoder that describes unlabelled states.

The paper labels 200–300 continuous states with descriptions and propagates the labels to
every other state with a contrastive encoder (InfoNCE, temperature 0.07). Here:

1. `collect_states` plays the domain's env with a mix of behaviours (uniform random actions,
   motion primitives held for a few steps with noise, and on Meta-World the package's scripted
   experts with action noise), so that the states cover standing, moving, falling, grasping.
2. `train_propagation` labels `labelled` of those states with the rule describer (the
   "hand-labelled" pairs), then trains a state encoder (MLP on standardised observations) and
   a description encoder (a learned vector per distinct description, or a linear map of its
   frozen MiniLM embedding, `priorcache.platform.embed.TextEmbedder`) so that each
   state's embedding is closest to its own description's: cross-entropy over cosine
   similarities / 0.07 against every distinct description (InfoNCE with the other
   descriptions as negatives).
3. `LearnedDescriber` maps a new state to the nearest labelled description (a numpy forward
   pass, no torch at step time). `evaluate_propagation` measures its accuracy on held-out
   states from other episodes against chance (1 / distinct descriptions), the majority
   description and a 1-nearest-neighbour baseline in observation space.

`env.describer=learned` uses `learned_describer`, which trains at env creation from a fixed
seed (deterministic, a few seconds on one thread, memoised per process) rather than loading
a file: nothing to ship or invalidate when a describer changes. Training pins torch to one
thread and restores the previous setting after.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator

import numpy as np

from priorcache.envs.describers import check_domain, rule_describer
from priorcache.envs.motion_primitives import Primitive, primitives
from priorcache.platform.config import EnvConfig, MetaWorldConfig


@dataclass(frozen=True)
class PropagationConfig:
    """How the learned describer is trained (the defaults are what `env.describer=learned` uses)."""

    labelled: int = 250
    """Rule-labelled (state, description) pairs the encoder trains on (the paper: 200–300)."""
    held_out: int = 500
    """States from other episodes on which accuracy is measured."""
    episode_steps: int = 200
    """Steps per collection episode (states are taken every `stride` steps)."""
    stride: int = 4
    """Keep one state in this many: consecutive states are near-duplicates."""
    text_encoder: str = "table"
    """Description encoder: `table` (a free vector per description) or `minilm` (a linear map of the
    frozen MiniLM embedding: as accurate on average, but it collapsed on pick-place-v3 and loads a
    model; docs/environments/continuous.md)."""
    hidden: int = 128
    """Width of the state encoder's hidden layers."""
    dim: int = 64
    """Dimension of the shared embedding space."""
    temperature: float = 0.07
    """InfoNCE temperature (the paper's value)."""
    steps: int = 400
    """Full-batch Adam steps."""
    lr: float = 3e-3
    """Adam learning rate."""
    weight_decay: float = 0.03
    """Adam weight decay (the labelled set is small)."""
    seed: int = 0
    """Seed of collection (episode seeds, behaviours) and of the encoder's initialisation."""


def _env_config(domain: str, task: str) -> EnvConfig:
    return EnvConfig(name=domain, max_steps=500, metaworld=MetaWorldConfig(task=task or "reach-v3"))


def _expert(task: str) -> Any:
    """Meta-World's scripted policy of `task` (`get_action(obs)`), None when the package has none."""
    from metaworld.policies import ENV_POLICY_MAP

    policy = ENV_POLICY_MAP.get(task)
    return policy() if policy is not None else None


def collect_states(domain: str, task: str, n: int, first_episode: int, cfg: PropagationConfig) -> np.ndarray:
    """`n` observations from episodes seeded `first_episode`, `first_episode + 1`, ...

    Each episode follows one behaviour, chosen by its seed: uniform random actions, a random
    motion primitive held for 5–20 steps (plus Gaussian noise), or (Meta-World) the scripted
    expert with noise of scale 0.1–1.
    """
    from priorcache.envs.continuous_env import make_continuous_env

    env = make_continuous_env(_env_config(domain, task))
    expert = _expert(task) if domain == "metaworld" else None
    states: list[np.ndarray] = []
    episode = first_episode
    try:
        with warnings.catch_warnings():
            # Meta-World's experts warn on every call that their gains exceed 1; actions are clipped.
            warnings.filterwarnings("ignore", message="Constant", category=UserWarning)
            while len(states) < n:
                states += _play_episode(env, expert, primitives(domain), episode, cfg)
                episode += 1
    finally:
        env.close()
    return np.asarray(states[:n], dtype=np.float32)


def _play_episode(env: Any, expert: Any, library: tuple[Primitive, ...], episode: int,
                  cfg: PropagationConfig) -> list[np.ndarray]:
    """Every `cfg.stride`-th observation of one collection episode."""
    rng = np.random.default_rng(cfg.seed * 100_003 + episode)
    obs, _ = env.reset(seed=int(rng.integers(2**31)))
    behaviour = episode % (3 if expert is not None else 2)
    noise = float(rng.uniform(0.1, 1.0))
    hold, primitive = 0, library[0]
    states = []
    for t in range(cfg.episode_steps):
        if behaviour == 0:
            action = rng.uniform(-1.0, 1.0, size=env.action_space.shape)
        elif behaviour == 1:
            if hold == 0:
                hold, primitive = int(rng.integers(5, 21)), library[int(rng.integers(len(library)))]
            hold -= 1
            action = rng.normal(primitive.mean, primitive.std)
        else:
            action = expert.get_action(obs) + rng.normal(0.0, noise, size=env.action_space.shape)
        obs, _, terminated, truncated, _ = env.step(np.clip(action, -1.0, 1.0).astype(np.float32))
        if t % cfg.stride == 0:
            states.append(obs)
        if terminated or truncated:
            break
    return states


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


INPUT_CLIP = 5.0
"""Standardised observations are clipped to +-5: rare spikes (Ant's contact forces) must not dominate."""


def standardise(obs: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The encoder's input: observations standardised by the labelled set's statistics, clipped."""
    return np.clip((obs - mean) / scale, -INPUT_CLIP, INPUT_CLIP)


@dataclass
class LearnedDescriber:
    """Nearest labelled description of a state, by the trained encoders (numpy at step time)."""

    domain: str
    descriptions: tuple[str, ...]
    """The distinct descriptions of the labelled pairs: the only texts it answers with."""
    obs_mean: np.ndarray
    obs_scale: np.ndarray
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    """(weight, bias) of the state encoder's linear layers, ReLU between them."""
    description_vectors: np.ndarray
    """(descriptions, dim) unit vectors."""

    def embed_states(self, obs: np.ndarray) -> np.ndarray:
        """Unit embeddings of a batch of observations (rows)."""
        h = standardise(np.atleast_2d(obs), self.obs_mean, self.obs_scale)
        for i, (weight, bias) in enumerate(self.layers):
            h = h @ weight.T + bias
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h / np.linalg.norm(h, axis=1, keepdims=True).clip(1e-12)

    def predict(self, obs: np.ndarray) -> list[str]:
        """The description of each observation (rows)."""
        best = (self.embed_states(obs) @ self.description_vectors.T).argmax(axis=1)
        return [self.descriptions[i] for i in best]

    def __call__(self, obs: np.ndarray) -> str:
        return self.predict(obs)[0]


@dataclass(frozen=True)
class PropagationReport:
    """Held-out accuracy of a learned describer beside its baselines."""

    domain: str
    labelled: int
    held_out: int
    descriptions: int
    """Distinct descriptions among the labelled pairs (chance = 1 / this)."""
    accuracy: float
    """Share of held-out states whose predicted description is the rule describer's."""
    chance: float
    majority: float
    """Accuracy of always answering the most common labelled description."""
    nearest_neighbour: float
    """Accuracy of copying the description of the nearest labelled state (standardised obs)."""
    coverage: float
    """Share of held-out states whose true description is among the labelled ones (the ceiling)."""
    train_seconds: float
    """CPU seconds of labelling and training (one torch thread)."""

    def line(self) -> str:
        return (f"{self.domain}: accuracy {self.accuracy:.1%} on {self.held_out} held-out states "
                f"(chance {self.chance:.1%}, majority {self.majority:.1%}, 1-NN {self.nearest_neighbour:.1%}, "
                f"ceiling {self.coverage:.1%}); {self.descriptions} descriptions from {self.labelled} labels, "
                f"trained in {self.train_seconds:.1f} CPU s")


def train_propagation(domain: str, task: str = "", cfg: PropagationConfig = PropagationConfig(),
                      states: np.ndarray | None = None) -> LearnedDescriber:
    """Label `cfg.labelled` collected states with the rule describer and fit the encoders on them."""
    check_domain(domain)
    if states is None:
        states = collect_states(domain, task, cfg.labelled, first_episode=0, cfg=cfg)
    rule = rule_describer(domain, task)
    labels = [rule(s) for s in states]
    descriptions = tuple(sorted(set(labels)))
    with _one_torch_thread():
        return _fit(domain, states, labels, descriptions, cfg)


def _fit(domain: str, states: np.ndarray, labels: list[str], descriptions: tuple[str, ...],
         cfg: PropagationConfig) -> LearnedDescriber:
    import torch
    from torch import nn

    torch.manual_seed(cfg.seed)
    mean = states.mean(axis=0)
    scale = states.std(axis=0) + 1e-3  # constant dimensions (e.g. Ant's idle contact forces) stay finite
    x = torch.as_tensor(standardise(states, mean, scale), dtype=torch.float32)
    index = {d: i for i, d in enumerate(descriptions)}
    y = torch.as_tensor([index[label] for label in labels])
    state_encoder = nn.Sequential(
        nn.Linear(states.shape[1], cfg.hidden), nn.ReLU(),
        nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(),
        nn.Linear(cfg.hidden, cfg.dim),
    )
    if cfg.text_encoder == "minilm":
        from priorcache.platform.embed import TextEmbedder

        text_features = torch.as_tensor(TextEmbedder(n_threads=1).embed(list(descriptions)))
        projection = nn.Linear(text_features.shape[1], cfg.dim)
        params = [*state_encoder.parameters(), *projection.parameters()]

        def description_vectors() -> torch.Tensor:
            return projection(text_features)
    elif cfg.text_encoder == "table":
        table = nn.Parameter(torch.randn(len(descriptions), cfg.dim) * 0.1)
        params = [*state_encoder.parameters(), table]

        def description_vectors() -> torch.Tensor:
            return table
    else:
        raise ValueError(f"PropagationConfig.text_encoder={cfg.text_encoder!r}: choose minilm or table")
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    for _ in range(cfg.steps):
        s = nn.functional.normalize(state_encoder(x), dim=1)
        d = nn.functional.normalize(description_vectors(), dim=1)
        loss = nn.functional.cross_entropy(s @ d.T / cfg.temperature, y)  # InfoNCE over the descriptions
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        d = nn.functional.normalize(description_vectors(), dim=1).numpy()
    linears = [m for m in state_encoder if isinstance(m, nn.Linear)]
    layers = tuple((m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy()) for m in linears)
    return LearnedDescriber(domain, descriptions, mean, scale, layers, d)


def evaluate_propagation(domain: str, task: str = "", cfg: PropagationConfig = PropagationConfig()) -> PropagationReport:
    """Train on `cfg.labelled` states and score on `cfg.held_out` states from later episodes."""
    train = collect_states(domain, task, cfg.labelled, first_episode=0, cfg=cfg)
    # Held-out states come from episodes the training states never saw.
    test = collect_states(domain, task, cfg.held_out, first_episode=10_000, cfg=cfg)
    started = time.process_time()  # CPU time: the wall clock of a shared machine says little
    describer = train_propagation(domain, task, cfg, states=train)
    seconds = time.process_time() - started
    rule = rule_describer(domain, task)
    train_labels = [rule(s) for s in train]
    truth = [rule(s) for s in test]
    predicted = describer.predict(test)
    most_common = Counter(train_labels).most_common(1)[0][0]
    test_x, train_x = (standardise(a, describer.obs_mean, describer.obs_scale) for a in (test, train))
    nearest = ((test_x[:, None, :] - train_x[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    known = set(describer.descriptions)
    return PropagationReport(
        domain=domain if not task else f"{domain}/{task}",
        labelled=len(train), held_out=len(test), descriptions=len(known),
        accuracy=float(np.mean([p == t for p, t in zip(predicted, truth)])),
        chance=1.0 / len(known),
        majority=float(np.mean([t == most_common for t in truth])),
        nearest_neighbour=float(np.mean([train_labels[i] == t for i, t in zip(nearest, truth)])),
        coverage=float(np.mean([t in known for t in truth])),
        train_seconds=seconds,
    )


def learned_describer(domain: str, task: str = "") -> LearnedDescriber:
    """The `env.describer=learned` describer of `domain` (trained on first use in this process)."""
    return _learned(domain, task)


@lru_cache(maxsize=None)
def _learned(domain: str, task: str) -> LearnedDescriber:
    return train_propagation(domain, task)
