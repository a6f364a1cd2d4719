"""`priorcache ui` in a real browser: headless Debian Chromium shows a finished run, its metrics
and the figure every run logs.

The store holds one run logged directly with mlflow (no training, to stay fast) whose metric
history looks like the default experiment's and whose figures are made by the same
`log_run_plots` a training run calls. The MLflow UI is a React app: every check waits for the
element to appear. A screenshot of the run's plot lands in the test's tmp folder; with
`UPDATE_DOCS_SCREENSHOT=1` it is also copied to docs/results/mlflow_ui.png (the docs' picture).

Needs Debian's `chromium` and `chromium-driver` (`make test` installs them when run as root);
without them the test fails, saying how to install them. It is never skipped.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pytest

from priorcache.platform.run_plots import META_PARAM, PLOTS_DIR, log_run_plots

REPO = Path(__file__).resolve().parents[1]
DOCS_SCREENSHOT = REPO / "docs" / "results" / "mlflow_ui.png"
DOCS_RUN_SCREENSHOT = REPO / "docs" / "results" / "mlflow_ui_run.png"
EXPERIMENT, RUN_NAME = "browser-check", "textworld_ppo_prior"
FIGURE = f"{PLOTS_DIR}/learning_curves.png"
INSTALL = "apt-get install -y chromium chromium-driver"
# Without the background-networking flags Chromium dials out at start, and on a closed
# network those connections are refused; a fresh profile keeps runs independent.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1000")
PAGE_TIMEOUT_S = 120  # liveness, not speed: a loaded 2-core machine renders slowly


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_run_history() -> list[dict[str, float]]:
    """Ten iterations shaped like the README's default run (hit rate up, LLM queries flat)."""
    rows = []
    for i in range(1, 11):
        rows.append({
            "env_steps": 1000.0 * i, "episode_return_mean": min(4.0, 3.2 + 0.2 * i),
            "success_rate": min(1.0, 0.8 + 0.05 * i), "cache_hit_rate": min(1.0, 0.975 + 0.01 * i),
            "llm_queries": 27.0 + min(i, 3), "prior_requests": 1064.0 * i + 40 * i,
            "prior_latency_ms_p50": 0.04, "prior_latency_ms_p95": 1800.0 / i,
            "llm_latency_ms_p50": 1700.0 + 40 * i, "llm_latency_ms_p95": 2400.0,
            "cache_threshold": 0.95, "cache_capacity": 1000.0, "cache_refresh": 0.0, "prior_temperature": 1.0,
            "prior_kl_audit": 0.0002, "prior_kl_audit_window": 0.0001 * (i % 3),
            "wall_time_s": 127.0 + 26 * i,
        })
    return rows


def chromium_paths() -> tuple[str, str]:
    """(browser, driver); a missing one fails the test with the install command."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        pytest.fail(f"Chromium and its driver are needed for this test; install them with `{INSTALL}` "
                    "(as root; `make test` does it itself when run as root)", pytrace=False)
    return browser, driver


def store_with_run(tmp_path: Path) -> tuple[str, str, str]:
    """(tracking URI, experiment id, run id) of a FINISHED run with metrics and figures."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment_id = mlflow.create_experiment(EXPERIMENT, artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment_id, run_name=RUN_NAME) as run:
        mlflow.log_params({"algorithm.name": "ppo_prior", META_PARAM: "False"})
        for step, metrics in enumerate(default_run_history(), start=1):
            mlflow.log_metrics(metrics, step=step)
        mlflow.log_metrics({"eval_success_rate": 1.0, "eval_random_success_rate": 0.3,
                            "eval_prior_success_rate": 1.0}, step=10)
        assert FIGURE in log_run_plots()
    return uri, experiment_id, run.info.run_id


@contextmanager
def serve_ui(store: str, cwd: Path) -> Iterator[str]:
    """`priorcache ui` on `store`, answering /health; its URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "priorcache", "ui", "--port", str(port), "--store", store],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}health", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
                assert time.monotonic() < deadline, "MLflow UI did not come up within 180 s"
                time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_the_ui_shows_the_run_its_metrics_and_its_figure(tmp_path):
    browser, driver_path = chromium_paths()  # first: without a browser nothing else is worth starting
    store, experiment_id, run_id = store_with_run(tmp_path)
    with serve_ui(store, tmp_path) as ui_url:
        run_page, figure = check_in_browser(browser, driver_path, ui_url, experiment_id, run_id, tmp_path)
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(figure, DOCS_SCREENSHOT)
        shutil.copyfile(run_page, DOCS_RUN_SCREENSHOT)


def check_in_browser(browser: str, driver_path: str, ui_url: str, experiment_id: str, run_id: str,
                     tmp_path: Path) -> tuple[Path, Path]:
    """Experiment, run, metrics and figure are shown; returns the screenshots (run page, figure)."""
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    wait = WebDriverWait(driver, PAGE_TIMEOUT_S, poll_frequency=0.5)

    def body(d: webdriver.Chrome) -> str:
        return d.find_element(By.TAG_NAME, "body").text

    def page_shows(*texts: str) -> None:
        try:
            wait.until(lambda d: all(text in body(d) for text in texts))
        except TimeoutException:
            driver.save_screenshot(str(tmp_path / "failed.png"))
            missing = [text for text in texts if text not in body(driver)]
            raise AssertionError(f"{driver.current_url} does not show {missing} within {PAGE_TIMEOUT_S} s "
                                 f"(screenshot {tmp_path / 'failed.png'})") from None

    try:
        # The experiment's runs (the "Model training" view of MLflow 3's UI).
        driver.get(f"{ui_url}#/experiments/{experiment_id}/runs?workflowType=machine_learning")
        page_shows(EXPERIMENT, RUN_NAME, "1 matching run")
        # The run: name, status and the fixed metric names with their last values.
        driver.get(f"{ui_url}#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning")
        page_shows(RUN_NAME, "Finished", "cache_hit_rate", "llm_queries", "prior_latency_ms_p50")
        # The screenshot shows the metrics table: close the assistant panel, scroll to "Metrics (n)".
        for close in driver.find_elements(By.XPATH, "//button[@aria-label='Close']"):
            driver.execute_script("arguments[0].click()", close)
        for heading in driver.find_elements(By.XPATH, "//*[starts-with(normalize-space(text()), 'Metrics (')]")[:1]:
            driver.execute_script("arguments[0].scrollIntoView()", heading)
        time.sleep(1)
        run_page = tmp_path / "mlflow_ui_run.png"
        assert driver.save_screenshot(str(run_page)) and run_page.stat().st_size > 10_000
        # The figure: listed in the artifact tree and rendered as a loaded image.
        driver.get(f"{ui_url}#/experiments/{experiment_id}/runs/{run_id}/artifacts/{FIGURE}"
                   "?workflowType=machine_learning")
        page_shows(FIGURE, "cache_llm.png", "prior_latency.png", "kl_audit_bound.png")
        wait.until(lambda d: any(d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)
                                 for img in d.find_elements(By.CSS_SELECTOR, "img[src^='blob:']")),
                   message=f"{FIGURE} is listed but no loaded image of it appeared")
        # The assistant side panel hides half the page in a screenshot; it is optional chrome.
        for close in driver.find_elements(By.XPATH, "//button[@aria-label='Close']"):
            driver.execute_script("arguments[0].click()", close)
        time.sleep(1)
        screenshot = tmp_path / "mlflow_ui.png"
        assert driver.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
    finally:
        driver.quit()
    return run_page, screenshot
