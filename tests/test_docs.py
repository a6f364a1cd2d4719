"""The docs site builds as `make docs` builds it: `mkdocs build --strict`, no warning, every page.

About 5-10 s on 2 cores (mkdocs-material, mkdocstrings over the package), so it runs by default.
"""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_site_builds_strict_with_every_page(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(REPO)},
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "WARNING" not in output, output[-4000:]
    for page in ("quickstart", "concepts", "cache", "tracking", "cluster", "text_domains", "install",
                 "algorithms/ppo_prior", "algorithms/dqn_prior", "algorithms/ppo", "algorithms/dqn",
                 "environments/textworld", "environments/alfworld", "environments/babyai", "environments/webshop",
                 "results/text", "results/cache", "results/prior", "results/cluster", "results/offline", "offline",
                 "algorithms/cql_prior",
                 "reference/config", "reference/api/algorithms", "reference/api/platform"):
        assert (site / page / "index.html").is_file(), f"page {page} was not built"
    # The generated reference and the expanded config tables carry the schema's keys and docstrings.
    config = (site / "reference" / "config" / "index.html").read_text()
    assert "prior.cache.meta.kl_budget" in config and "Target mean KL(cached" in config
    ppo = (site / "algorithms" / "ppo_prior" / "index.html").read_text()
    assert "algorithm.prior_kl_coeff" in ppo and "<!-- config:" not in ppo
    # README snippets: the quickstart shows the two commands and the progress lines.
    quickstart = (site / "quickstart" / "index.html").read_text()
    assert "make test" in quickstart and "iter   1/10" in quickstart
    # The API pages are generated from the docstrings.
    assert "PPOPriorConfig" in (site / "reference" / "api" / "algorithms" / "index.html").read_text()
    assert (site / "results" / "mlflow_ui.png").is_file()
