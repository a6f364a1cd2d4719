"""The command line: input errors are reported in one line naming the key, exit code 2."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = REPO / "experiments" / "textworld_ppo_prior.yaml"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "priorcache", *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO)


def test_bad_override_fails_fast_naming_the_key():
    proc = run_cli("run", str(EXPERIMENT), "prior.cache.treshold=0.9")
    assert proc.returncode == 2
    assert "prior.cache.treshold" in proc.stderr
    assert "Started a local Ray instance" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("override, key", [
    ("env.game_file={bad_game}", "env.game_file"),
    ("prior.llm.model_path={bad_model}", "prior.llm.model_path"),
    ("ray.address=127.0.0.1:9", "ray.address"),
])
def test_bad_inputs_fail_in_one_line_naming_the_key(tmp_path, override, key):
    bad_game = tmp_path / "game.z8"
    bad_game.write_text("not a story file")
    bad_game.with_suffix(".json").write_text("{}")
    bad_model = tmp_path / "model.gguf"
    bad_model.write_text("not a model")
    proc = run_cli("run", str(EXPERIMENT), override.format(bad_game=bad_game, bad_model=bad_model),
                   f"output_dir={tmp_path / 'runs'}", f"tracking.uri=sqlite:///{tmp_path / 'db.sqlite'}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert key in proc.stderr and "Traceback" not in proc.stderr


def test_help_lists_the_commands():
    proc = run_cli("--help")
    assert proc.returncode == 0
    assert "run" in proc.stdout and "ui" in proc.stdout


def test_unknown_babyai_level_fails_in_one_line(tmp_path):
    proc = run_cli("run", str(REPO / "experiments" / "babyai_ppo_prior.yaml"), "env.babyai.level=BabyAI-GoToObjj-v0",
                   f"output_dir={tmp_path / 'runs'}", f"tracking.uri=sqlite:///{tmp_path / 'db.sqlite'}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "env.babyai.level" in proc.stderr and "BabyAI-GoToObj-v0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_resume_of_a_folder_without_checkpoint_fails_in_one_line(tmp_path):
    proc = run_cli("run", str(EXPERIMENT), f"tracking.uri=sqlite:///{tmp_path / 'db.sqlite'}",
                   "--resume", str(tmp_path))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--resume" in proc.stderr and "checkpoint" in proc.stderr and "Traceback" not in proc.stderr
