"""SIGTERM (`kill`, `ray job stop`) ends a command like Ctrl-C: exit 130, what was recorded kept."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "priorcache", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def terminate_when(proc: subprocess.Popen, ready, timeout_s: float = 300) -> tuple[str, str]:
    deadline = time.monotonic() + timeout_s
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert proc.poll() is None, f"the command ended before it could be stopped: {proc.communicate()}"
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=120)


def test_sigterm_stops_a_command_like_ctrl_c(tmp_path):
    """Demonstrations of many episodes, stopped mid-way: nothing half-written is left as done."""
    proc, started = start("demos", "babyai", "--out", str(tmp_path / "demos"), "--episodes", "9000"), time.monotonic()
    _, err = terminate_when(proc, lambda: time.monotonic() > started + 15)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    assert not (tmp_path / "demos" / "card.json").exists()


def test_sigterm_after_ray_started_keeps_the_finished_cells(tmp_path):
    """`ray.init` installs its own SIGTERM handler (an exit); `init_ray` puts the interrupt back."""
    tiny = ["env.game.world_size=2", "env.game.nb_objects=4", "env.game.quest_length=2", "env.max_steps=8",
            f"env.games_dir={REPO / '.cache' / 'games'}"]
    bench = {"output": str(tmp_path / "cache"), "steps": 8, "window": 4, "audit_rate": 1.0, "audit_wait_s": 3,
             "envs": {"textworld": {"experiment": str(REPO / "experiments" / "textworld_ppo_prior.yaml"),
                                    "overrides": tiny}},
             "policies": {"a_uncached": {"prior.cache.mode": "off"}, "uncached": {"prior.cache.mode": "off"}}}
    (tmp_path / "bench.yaml").write_text(yaml.safe_dump(bench))
    cells = tmp_path / "cache.cells.jsonl"
    proc = start("bench", "cache-policies", "--config", str(tmp_path / "bench.yaml"))
    _, err = terminate_when(proc, cells.exists)
    assert proc.returncode == 130, err[-3000:]
    assert len(cells.read_text().splitlines()) == 1 and not (tmp_path / "cache.json").exists()


def test_an_error_raised_because_of_sigterm_counts_as_the_interrupt():
    """The interrupt hits whatever runs: torch, building a tensor from a sequence whose item
    access is interrupted, reports a ValueError instead (seen in `make_env` under CI)."""
    script = """
import os, signal, torch
from priorcache.interrupt import interrupt_on_sigterm, was_interrupted

class Terminated:  # a sequence whose first item access is interrupted by SIGTERM
    def __len__(self): return 1
    def __getitem__(self, i):
        os.kill(os.getpid(), signal.SIGTERM)
        return 0.0

assert not was_interrupted(ValueError("before any signal"))
interrupt_on_sigterm()
try:
    torch.tensor([Terminated()])
except ValueError as error:
    print("converted:", error, was_interrupted(error))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, text=True, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("converted:") and done.stdout.strip().endswith("True"), done.stdout
