"""The command line: config errors are reported with the key, exit code 2, before Ray starts."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bad_override_fails_fast_naming_the_key():
    proc = subprocess.run(
        [sys.executable, "-m", "priorcache", "run", str(REPO / "experiments" / "textworld_ppo_prior.yaml"),
         "prior.cache.treshold=0.9"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "prior.cache.treshold" in proc.stderr
    assert "Started a local Ray instance" not in proc.stderr + proc.stdout


def test_help_lists_the_commands():
    proc = subprocess.run([sys.executable, "-m", "priorcache", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "run" in proc.stdout and "ui" in proc.stdout
