"""The README's first command, as a user runs it: the default experiment through the CLI.

Slow (about 5 minutes on 2 cores): `make test-all` or `pytest -m slow` runs it.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from priorcache.metrics import METRIC_NAMES

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_default_experiment_beats_random_with_fewer_llm_queries_than_requests(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "priorcache", "run", str(REPO / "experiments" / "textworld_ppo_prior.yaml"),
         f"output_dir={tmp_path / 'runs'}", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"],
        capture_output=True, text=True, timeout=1500, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(re.findall(r"^iter +\d+/10 ", proc.stdout, flags=re.M)) == 10
    summary_path = Path(re.search(r"^summary\.json : (.+)$", proc.stdout, flags=re.M).group(1))
    summary = json.loads(summary_path.read_text())
    assert all(name in summary for name in METRIC_NAMES)
    assert summary["llm_queries"] < summary["prior_requests"]
    assert summary["success_rate"] > summary["random_success_rate"]
