"""GIFs of evaluation episodes of a continuous-control policy (MLflow artifacts of the run).

`record_episodes` plays a policy on a continuous env built with `render_mode="rgb_array"` and
writes one GIF per episode with imageio's Pillow writer (GIF, not MP4: the locked environment
has imageio and Pillow but no ffmpeg). Rendering is software EGL on a CPU-only machine (about
0.3 s per 480x480 frame on the 2 shared cores), so a clip shows the first `steps` env steps
with every `FRAME_STRIDE`-th step as a frame. MuJoCo reads `MUJOCO_GL` when it first renders:
without a display, `MUJOCO_GL=egl` must be set before the process starts (the default is
set here for processes that have not chosen). This module only plays and renders; it never trains.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import gymnasium as gym
import numpy as np

from priorcache.evaluation import Policy

FRAME_STRIDE = 3
"""Every third env step is a frame."""

os.environ.setdefault("MUJOCO_GL", "egl")


def record_episodes(make_env: Callable[[], gym.Env], policy: Policy, episodes: int, seed: int, steps: int,
                    out_dir: Path, name: str) -> list[Path]:
    """`episodes` GIFs `<name>-seed<seed>.gif` in `out_dir` (seeds seed, seed+1, ... like `evaluate`)."""
    import imageio.v2 as imageio

    out_dir.mkdir(parents=True, exist_ok=True)
    env = make_env()
    paths = []
    try:
        fps = env.metadata.get("render_fps", 30) / FRAME_STRIDE  # real time
        for episode in range(episodes):
            rng = np.random.default_rng(seed + episode)
            obs, _ = env.reset(seed=seed + episode)
            frames = [env.render()]
            for t in range(1, steps + 1):
                obs, _, terminated, truncated, _ = env.step(policy(obs, rng))
                if t % FRAME_STRIDE == 0:
                    frames.append(env.render())
                if terminated or truncated:
                    break
            path = out_dir / f"{name}-seed{seed + episode}.gif"
            imageio.mimsave(path, [np.asarray(f) for f in frames], duration=1000.0 / fps, loop=0)
            paths.append(path)
    finally:
        env.close()
    return paths
