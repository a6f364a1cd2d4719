"""`priorcache eval`: a 2-episode suite run as a user runs it, its table, resuming, bad input."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from priorcache.eval_suite import COLUMNS, EvalSuiteConfig, domain_agents, load_suite, render_markdown
from priorcache.platform.config import ConfigError

REPO = Path(__file__).resolve().parents[1]


def write_suite(tmp_path: Path, agents: list[str], experiment: str = "experiments/textworld_ppo_prior.yaml") -> Path:
    suite = {
        "name": "t",
        "output": str(tmp_path / "results" / "text"),
        "agents": agents,
        "domains": {"tiny": {"experiment": str(REPO / experiment), "overrides": [
            "env.game.world_size=2", "env.game.nb_objects=4", "env.game.quest_length=2",
            f"env.games_dir={REPO / '.cache' / 'games'}", "env.max_steps=10",
            "train.iterations=1", "algorithm.train_batch_size=100", "algorithm.minibatch_size=50",
            "algorithm.num_epochs=1", "eval.episodes=2",
        ]}},
        "overrides": [f"output_dir={tmp_path / 'runs'}", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"],
        "react_thought_tokens": 8,
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def run_eval(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "-m", "priorcache", "eval", *args], capture_output=True, text=True,
                          timeout=600, cwd=REPO, env=env)


# 200 s in CI: the rows' real paths stay in the default suite (test_variant_and_sampled_rows_run_on_the_real_prior,
# test_ppo_prior_trains_and_is_tracked_in_mlflow) and resuming is covered by the stand-in row tests below.
@pytest.mark.slow
def test_two_episode_suite_writes_the_table_and_resumes(tmp_path):
    suite = write_suite(tmp_path, ["ppo_prior", "direct_llm", "react", "random"])
    proc = run_eval(str(suite))
    assert proc.returncode == 0, proc.stderr[-3000:]

    with open(tmp_path / "results" / "text.csv", newline="") as f:
        rows = {r["agent"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["ppo_prior", "direct_llm", "react", "random"]
    for row in rows.values():
        assert row["episodes"] == "2.0" and 0.0 <= float(row["success_rate"]) <= 1.0
        assert row["mlflow_run_id"]
    assert float(rows["ppo_prior"]["train_env_steps"]) >= 100
    assert float(rows["ppo_prior"]["llm_queries"]) > 0
    assert float(rows["direct_llm"]["llm_queries"]) > 0
    assert float(rows["react"]["llm_queries"]) == 2 * float(rows["react"]["prior_requests"]) > 0
    assert float(rows["random"]["train_env_steps"]) == 0
    table = (tmp_path / "results" / "text.md").read_text()
    assert "## tiny" in table and "| react |" in table

    again = run_eval(str(suite), "--agents", "random")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already in" in again.stdout

    redone = run_eval(str(suite), "--agents", "random", "--fresh")
    assert redone.returncode == 0, redone.stderr[-3000:]
    with open(tmp_path / "results" / "text.csv", newline="") as f:
        after = {r["agent"]: r for r in csv.DictReader(f)}
    assert sorted(after) == sorted(rows)
    assert "[tiny / random] running" in redone.stdout and "already in" not in redone.stdout
    def values(row: dict) -> dict:
        return {k: v if k in ("domain", "agent", "mlflow_run_id") else f"{float(v):.9g}" for k, v in row.items()}

    assert all(values(after[a]) == values(rows[a]) for a in ("ppo_prior", "direct_llm", "react"))


def test_fresh_redoes_only_the_selected_rows(tmp_path, monkeypatch):
    from priorcache import eval_suite
    from priorcache.eval_suite import DomainSpec, run_suite, write_rows

    suite = EvalSuiteConfig(output=str(tmp_path / "t"), agents=["random", "react"],
                            domains={"a": DomainSpec(experiment="unused.yaml"), "b": DomainSpec(experiment="unused.yaml")})
    old = [{c: 1.0 for c in COLUMNS} | {"domain": d, "agent": a, "mlflow_run_id": "old"}
           for d in ("a", "b") for a in ("random", "react")]
    write_rows(tmp_path / "t.csv", old)
    ran = []

    def fake_run_row(suite, domain, agent):  # unit-level stand-in; the real path is the test above
        ran.append((domain, agent))
        return {c: 1.0 for c in COLUMNS} | {"domain": domain, "agent": agent, "mlflow_run_id": "new"}

    monkeypatch.setattr(eval_suite, "run_row", fake_run_row)
    run_suite(suite, domains=["b"], agents=["react"], fresh=True, log=lambda line: None)
    assert ran == [("b", "react")]
    rows = {(r["domain"], r["agent"]): r["mlflow_run_id"] for r in eval_suite.read_rows(tmp_path / "t.csv")}
    assert rows == {("a", "random"): "old", ("a", "react"): "old", ("b", "random"): "old", ("b", "react"): "new"}


def test_rows_another_invocation_wrote_meanwhile_are_kept(tmp_path, monkeypatch):
    from priorcache import eval_suite
    from priorcache.eval_suite import DomainSpec, run_suite, write_rows

    suite = EvalSuiteConfig(output=str(tmp_path / "t"), agents=["random"],
                            domains={"a": DomainSpec(experiment="unused.yaml"), "b": DomainSpec(experiment="unused.yaml")})
    csv_path = tmp_path / "t.csv"

    def fake_run_row(suite, domain, agent):  # unit-level stand-in, as above
        # Meanwhile a second `priorcache eval --domains b` finishes its row.
        write_rows(csv_path, [{c: 1.0 for c in COLUMNS} | {"domain": "b", "agent": "random", "mlflow_run_id": "other"}])
        return {c: 1.0 for c in COLUMNS} | {"domain": domain, "agent": agent, "mlflow_run_id": "mine"}

    monkeypatch.setattr(eval_suite, "run_row", fake_run_row)
    run_suite(suite, domains=["a"], log=lambda line: None)
    rows = {(r["domain"], r["agent"]): r["mlflow_run_id"] for r in eval_suite.read_rows(csv_path)}
    assert rows == {("a", "random"): "mine", ("b", "random"): "other"}


def test_bad_suite_input_names_the_key(tmp_path):
    suite = write_suite(tmp_path, ["random", "alphago"])
    proc = run_eval(str(suite))
    assert proc.returncode == 2 and "agents" in proc.stderr and "Traceback" not in proc.stderr
    suite = write_suite(tmp_path, ["random"])
    proc = run_eval(str(suite), "--domains", "atari")
    assert proc.returncode == 2 and "--domains" in proc.stderr


def test_cache_savings_compare_uncached_with_cached():
    suite = EvalSuiteConfig(agents=["ppo_prior", "ppo_prior_uncached"])
    base = {c: 0.0 for c in COLUMNS} | {"domain": "d", "mlflow_run_id": "x", "success_rate": 1.0}
    rows = [base | {"agent": "ppo_prior", "llm_queries": 20.0, "prior_latency_ms_p50": 0.05},
            base | {"agent": "ppo_prior_uncached", "llm_queries": 1000.0, "prior_latency_ms_p50": 400.0}]
    table = render_markdown(suite, rows)
    assert "| d | ppo_prior | 50.0x (1000 / 20) | 8000.0x | – | 1.00 | 1.00 | 0.0 | 0.0 |" in table


def test_cache_savings_of_sac_prior_show_the_returns():
    suite = EvalSuiteConfig(agents=["sac_prior", "sac_prior_uncached", "sac"])
    base = {c: 0.0 for c in COLUMNS} | {"domain": "cheetah", "mlflow_run_id": "x", "success_rate": float("nan")}
    rows = [base | {"agent": "sac", "llm_queries": 0.0, "episode_return_mean": -50.0},
            base | {"agent": "sac_prior", "llm_queries": 10.0, "prior_latency_ms_p50": 0.5, "episode_return_mean": -20.0},
            base | {"agent": "sac_prior_uncached", "llm_queries": 300.0, "prior_latency_ms_p50": 500.0,
                    "episode_return_mean": -30.0}]
    table = render_markdown(suite, rows)
    assert "| cheetah | sac_prior | 30.0x (300 / 10) | 1000.0x | – | – | – | -20.0 | -30.0 |" in table  # no success signal
    assert "| sac | – | -50.00 |" in table


def test_continuous_domains_take_only_rl_agents_and_random(tmp_path):
    from priorcache.eval_suite import load_suite

    suite = tmp_path / "suite.yaml"
    suite.write_text(f"""
agents: [sac, random, direct_llm]
domains:
  cheetah: {{experiment: {REPO / 'experiments' / 'halfcheetah_sac_prior.yaml'}}}
""")
    with pytest.raises(ConfigError, match="'direct_llm' acts on text commands"):
        load_suite(suite)


def test_shipped_suites_load():
    from priorcache.eval_suite import load_suite

    suites = sorted((REPO / "experiments" / "suites").glob("*.yaml"))
    assert suites
    for path in suites:
        suite = load_suite(path)
        assert suite.domains and suite.agents


def test_success_cells_carry_their_wilson_interval():
    from priorcache.eval_suite import format_success, wilson_interval

    assert [round(x, 2) for x in wilson_interval(16 / 40, 40)] == [0.26, 0.55]
    assert [round(x, 2) for x in wilson_interval(0.0, 10)] == [0.0, 0.28]
    assert format_success(0.3, 10.0) == "0.30 (0.11–0.60)"
    assert format_success(float("nan"), 10.0) == "–"
    assert format_success(0.5, float("nan")) == "0.50"  # no episode count, no interval


def test_render_only_writes_the_table_from_the_csv_and_runs_nothing(tmp_path):
    from priorcache.eval_suite import DomainSpec, run_suite, write_rows

    suite = EvalSuiteConfig(output=str(tmp_path / "text"), agents=["random", "react"],
                            domains={"d": DomainSpec(experiment="unused.yaml", note="Wider: [w](w.md).")})
    row = {c: 1.0 for c in COLUMNS} | {"domain": "d", "agent": "random", "mlflow_run_id": "x"}
    write_rows(tmp_path / "text.csv", [row])
    md = run_suite(suite, render_only=True, log=lambda line: pytest.fail(f"ran something: {line}")).read_text()
    assert "| random | 1.00 (0.21–1.00) |" in md and "| react |" not in md
    assert "## d\n\nWider: [w](w.md).\n\n| agent |" in md


def test_variants_add_their_overrides_and_unknown_variants_are_refused(tmp_path):
    from priorcache.eval_suite import load_suite, run_config
    from priorcache.platform.config import ConfigError

    path = write_suite(tmp_path, ["direct_llm@pmi", "sampled_llm", "ppo"])
    data = yaml.safe_load(path.read_text())
    data["variants"] = {"pmi": ["prior.llm.scoring=pmi", "prior.llm.uniform_mix=0.1", "output_dir=out/{domain}"]}
    path.write_text(yaml.safe_dump(data))
    suite = load_suite(path)
    cfg = run_config(suite, "tiny", "direct_llm@pmi")
    assert (cfg.prior.llm.scoring, cfg.prior.llm.uniform_mix, cfg.name) == ("pmi", 0.1, "t-tiny-direct_llm-pmi")
    assert cfg.output_dir == "out/tiny"
    assert run_config(suite, "tiny", "sampled_llm").prior.llm.scoring == "mean"

    data["variants"]["greedy"] = ["eval.greedy=true", "prior.llm.uniform_mix=0.2"]
    data["agents"] = ["direct_llm@pmi+greedy"]
    path.write_text(yaml.safe_dump(data))
    cfg = run_config(load_suite(path), "tiny", "direct_llm@pmi+greedy")  # both, applied in order
    assert (cfg.prior.llm.scoring, cfg.eval.greedy, cfg.prior.llm.uniform_mix) == ("pmi", True, 0.2)
    assert cfg.name == "t-tiny-direct_llm-pmi-greedy"
    table = render_markdown(load_suite(path), [])  # the reader of a table sees what each variant means
    assert "- `@greedy`: `eval.greedy=true prior.llm.uniform_mix=0.2`" in table

    for undefined in ("direct_llm@tuned", "direct_llm@pmi+tuned"):
        data["agents"] = [undefined]
        path.write_text(yaml.safe_dump(data))
        with pytest.raises(ConfigError, match="variants"):
            load_suite(path)


def test_variant_and_sampled_rows_run_on_the_real_prior(tmp_path):
    """`direct_llm@pmi`, `sampled_llm`, `direct_llm_no_repeat` end to end: own rows, own MLflow runs, real LLM queries."""
    path = write_suite(tmp_path, ["sampled_llm", "direct_llm@pmi", "direct_llm_no_repeat"])
    data = yaml.safe_load(path.read_text())
    data["variants"] = {"pmi": ["prior.llm.scoring=pmi"]}
    path.write_text(yaml.safe_dump(data))
    proc = run_eval(str(path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "results" / "text.csv", newline="") as f:
        rows = {r["agent"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["sampled_llm", "direct_llm@pmi", "direct_llm_no_repeat"]
    for row in rows.values():
        assert row["episodes"] == "2.0" and float(row["llm_queries"]) > 0 and row["mlflow_run_id"]
        # every step asks for a prior (the cache answers some): counted by `PriorTally`
        assert float(row["prior_requests"]) >= float(row["episode_len_mean"]) * 2
        assert 0.0 <= float(row["cache_hit_rate"]) < 1.0 and float(row["prior_latency_ms_p50"]) >= 0.0
    assert "| direct_llm@pmi |" in (tmp_path / "results" / "text.md").read_text()


def test_rule_agent_is_refused_outside_webshop_and_domains_list_their_agents(tmp_path):
    suite = write_suite(tmp_path, ["random", "rule"])
    with pytest.raises(ConfigError, match="'rule' plays WebShop only"):
        load_suite(suite)
    data = yaml.safe_load(suite.read_text())
    data["agents"] = ["random"]
    data["domains"]["webshop"] = {"experiment": str(REPO / "experiments/webshop_ppo_prior.yaml"), "agents": ["rule", "random"]}
    suite.write_text(yaml.safe_dump(data))
    loaded = load_suite(suite)
    assert domain_agents(loaded, "webshop") == ["rule", "random"]
    assert domain_agents(loaded, next(d for d in loaded.domains if d != "webshop")) == ["random"]


def test_only_the_selected_rows_need_their_files(tmp_path):
    from priorcache.eval_suite import load_suite

    suite = tmp_path / "suite.yaml"
    suite.write_text(f"""
agents: [random, direct_llm@tuned]
variants:
  tuned: ["prior.llm.adapter_path={tmp_path}/{{domain}}.gguf"]
domains:
  babyai: {{experiment: {REPO / 'experiments' / 'babyai_ppo_prior.yaml'}}}
""")
    with pytest.raises(ConfigError, match="prior.llm.adapter_path"):
        load_suite(suite)
    assert load_suite(suite, agents=["random"]).domains
