"""Continuous-control environments: Gymnasium MuJoCo locomotion and Meta-World v3 manipulation.

`make_continuous_env(cfg)` builds the env named by `env.name` (halfcheetah, walker2d, ant,
metaworld) behind one interface: a float32 `Box` observation, a `Box` action in [-1, 1]^d,
episodes cut at `env.max_steps` (truncation), `info["state_text"]` on every reset and step
(the description the LLM prior scores primitives against and the cache keys on, written by
the `env.describer` of the domain), `info["success"]` on Meta-World, and `render()` returning
RGB frames when built with `render_mode="rgb_array"` (headless: set `MUJOCO_GL=egl`).

Meta-World's own gymnasium entry (`Meta-World/MT1`) draws placements from an RNG that
`reset(seed=...)` does not reseed; `MetaWorldEnv` wraps the task class directly so that a
reset seed picks the placement (one of the task's 50 MT1 object and goal placements, goal
visible in the observation), which makes episodes reproducible and passes `check_env`.
This module builds envs; it holds no prior, policy or RLlib code.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box
from gymnasium.wrappers import TransformObservation

from priorcache.envs.describers import DOMAINS, Describer, rule_describer
from priorcache.platform.config import EnvConfig, check_metaworld

GYM_IDS = {"halfcheetah": "HalfCheetah-v5", "walker2d": "Walker2d-v5", "ant": "Ant-v5"}
"""Gymnasium ids of the locomotion domains (standard v5 settings, 1000-step benchmark episodes)."""
CONTINUOUS_ENVS = DOMAINS
"""`env.name` values this module builds."""


class ContinuousEnvError(ValueError):
    """A continuous env cannot be built as configured; the message names the key and the fix."""


class MetaWorldEnv(gym.Env):
    """One Meta-World v3 task with seeded placements, float32 observations and a boolean `info["success"]`.

    Observation (39): gripper xyz, finger opening, object 1 xyz + quaternion, object 2 xyz +
    quaternion, the same 18 values one step earlier, goal xyz. Action (4): gripper dx, dy, dz
    and grip effort (+1 closes), all in [-1, 1]. Never terminates (Meta-World's convention:
    success is reported, the episode goes on); truncates after 500 steps. Frames come from the
    scene camera `camera_name` (corner2: an overview of robot, table and objects).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 80}

    def __init__(self, task: str, render_mode: str | None = None, camera_name: str = "corner2") -> None:
        import metaworld

        benchmark = metaworld.MT1(task, seed=0)  # the seed fixes the task's 50 placements
        self.task = task
        self.render_mode = render_mode
        self._placements = benchmark.train_tasks
        self._env = benchmark.train_classes[task](render_mode=render_mode, camera_name=camera_name)
        self._env.set_task(self._placements[0])
        shape = self._env.observation_space.shape
        self.observation_space = Box(-np.inf, np.inf, shape, np.float32)
        self.action_space = Box(-1.0, 1.0, self._env.action_space.shape, np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._env.set_task(self._placements[int(self.np_random.integers(len(self._placements)))])
        obs, _ = self._env.reset()
        return obs.astype(np.float32), {"success": False}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, _, truncated, info = self._env.step(np.asarray(action, dtype=np.float32))
        info = {**info, "success": bool(info["success"])}
        return obs.astype(np.float32), float(reward), False, bool(truncated), info

    def render(self) -> np.ndarray | None:
        frame = self._env.render()
        # Meta-World's scene cameras are rolled upside down (their up axis points down in the
        # XML, e.g. corner: xyaxes="-1 1 0 -0.2 -0.2 -1"): turn the frame the right way up.
        return None if frame is None else np.ascontiguousarray(frame[::-1, ::-1])

    def close(self) -> None:
        self._env.close()


class StateText(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Adds `info["state_text"]`, the describer's text of the new observation, on reset and step."""

    def __init__(self, env: gym.Env, describer: Describer) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, describer=describer)  # env.spec can rebuild it
        super().__init__(env)
        self.describer = describer

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "state_text": self.describer(obs)}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "state_text": self.describer(obs)}


def _float32(obs: np.ndarray) -> np.ndarray:
    return obs.astype(np.float32)


def make_describer(cfg: EnvConfig) -> Describer:
    """The `env.describer` of the domain `env.name`: rule-based, or learned by contrastive propagation."""
    task = cfg.metaworld.task if cfg.name == "metaworld" else ""
    if cfg.describer == "learned":
        from priorcache.envs.state_propagation import learned_describer

        return learned_describer(cfg.name, task)
    return rule_describer(cfg.name, task)


def _make_metaworld(cfg: EnvConfig, render_mode: str | None) -> gym.Env:
    check_metaworld(cfg)  # the extra, the task and the step limit, as load_config checks them
    return gym.wrappers.TimeLimit(MetaWorldEnv(cfg.metaworld.task, render_mode), cfg.max_steps)


def make_continuous_env(cfg: EnvConfig, render_mode: str | None = None) -> gym.Env:
    """The continuous env named by `env.name`, with `info["state_text"]` from its describer.

    `render_mode="rgb_array"` makes `render()` return frames (for videos).
    """
    if cfg.name not in CONTINUOUS_ENVS:
        raise ContinuousEnvError(
            f"env.name={cfg.name!r} is not a continuous env: choose one of {', '.join(CONTINUOUS_ENVS)}"
        )
    if cfg.name == "metaworld":
        env = _make_metaworld(cfg, render_mode)
    else:
        env = gym.make(GYM_IDS[cfg.name], max_episode_steps=cfg.max_steps, render_mode=render_mode)
        env = TransformObservation(env, _float32, Box(-np.inf, np.inf, env.observation_space.shape, np.float32))
    if not (np.all(env.action_space.low == -1.0) and np.all(env.action_space.high == 1.0)):
        # Every shipped domain's actuators span [-1, 1], which the motion primitives assume.
        raise ContinuousEnvError(f"{cfg.name}: action space {env.action_space} is not [-1, 1]^d")
    return StateText(env, make_describer(cfg))
