"""WebShop: data and splits, BM25 search, the reward against hand-computed cases, page flow,
gymnasium's checker, a scripted purchase of the goal, the rule baseline, config errors."""

import warnings
from dataclasses import replace

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from priorcache.baselines.webshop_rule import WebShopRuleAgent
from priorcache.envs.webshop_data import Goal, WebShopDataError, check_data_dir, load_catalog, price_bound
from priorcache.envs.webshop_env import BACK, BUY, NEXT, PREV, WebShopEnv
from priorcache.envs.webshop_reward import purchase_reward, type_reward
from priorcache.envs.webshop_search import ProductSearch
from priorcache.evaluation import evaluate
from priorcache.platform.config import ConfigError, load_config

INFO_KEYS = {"won", "lost", "score", "max_score", "steps", "candidates_truncated", "page", "goal_asin"}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def click(env, obs, command):
    return env.step(obs["candidates"].index(command))


def goal_title_command(env, product):
    return "click[" + " ".join(product.title.replace("[", "(").replace("]", ")").split()[: env.title_words]) + "]"


def test_splits_are_fixed_disjoint_and_by_product(catalog):
    splits = catalog.splits
    assert (len(splits["train"]), len(splits["eval"]), len(splits["human"])) == (327, 88, 13)
    assert not set(splits["train"]) & set(splits["eval"])
    assert load_catalog.__wrapped__() == catalog  # reading again gives the same catalogue and splits


def test_goals_are_seeded_and_well_formed(catalog):
    first = [catalog.goal("eval", np.random.default_rng(7)) for _ in range(2)]
    assert first[0] == first[1]
    rng = np.random.default_rng(0)
    for _ in range(50):
        goal = catalog.goal("train", rng)
        product = catalog.products[goal.asin]
        assert goal.asin in catalog.splits["train"]
        assert goal.instruction.startswith(product.instruction)
        assert len(goal.options) == len(product.options)
        assert all(o in values for o, values in zip(goal.options, dict(sorted(product.options.items())).values()))
        assert product.price < goal.price_upper
        assert goal.instruction.endswith(f"price lower than {goal.price_upper:.2f} dollars")


def test_price_bound_follows_webshop_rule():
    rng = np.random.default_rng(0)
    bounds = {price_bound(23.5, rng)[0] for _ in range(100)}
    assert bounds == {40.0, 50.0, 60.0}  # larger of two of 30, 40, 50, 60
    assert price_bound(985.0, rng) == (1_000_000.0, "")  # fewer than two steps above: no clause


def test_bm25_finds_the_goal_product_for_most_instructions(catalog):
    search = ProductSearch(list(catalog.products.values()))
    rng = np.random.default_rng(0)
    goals = [catalog.goal("eval", rng) for _ in range(100)]
    rate = np.mean([g.asin in search.search(g.instruction, 10) for g in goals])
    print(f"goal product in BM25 top 10 for its own instruction: {rate:.0%}")
    assert rate >= 0.7  # measured 80.5% (eval), 82.5% (train), 92% (human)
    assert search.search("", 10) == [] and search.search("!!!", 10) == []


# -- reward: hand-computed cases -------------------------------------------------------------


@pytest.fixture(scope="module")
def shirt(catalog):
    """A product with two option groups and attributes (found, not hard-coded by ASIN)."""
    rng = np.random.default_rng(3)
    for _ in range(500):
        goal = catalog.goal("train", rng)
        if len(goal.options) == 2 and len(goal.attributes) >= 2:
            return goal, catalog.products[goal.asin]
    pytest.fail("no two-option goal found")


def test_reward_is_one_for_the_goal_product_with_its_options(shirt):
    goal, product = shirt
    r = purchase_reward(product, list(goal.options), goal, product)
    assert (r.reward, r.r_type, r.attributes_matched, r.options_matched, r.price_ok) == (
        1.0, 1.0, len(goal.attributes), 2, True)


def test_reward_missing_option(shirt):
    goal, product = shirt
    r = purchase_reward(product, [goal.options[0]], goal, product)
    n = len(goal.attributes)
    assert r.options_matched == 1 and r.reward == pytest.approx((n + 1 + 1) / (n + 2 + 1))


def test_reward_price_above_bound(shirt):
    goal, product = shirt
    cheap_bound = replace(goal, price_upper=product.price - 0.01)
    r = purchase_reward(product, list(goal.options), cheap_bound, product)
    n = len(goal.attributes)
    assert not r.price_ok and r.reward == pytest.approx((n + 2) / (n + 3))


def test_reward_wrong_type(catalog, shirt):
    goal, product = shirt
    other = next(p for p in catalog.products.values()
                 if p.category != product.category and type_reward(p, product) == 0.0)
    r = purchase_reward(other, list(goal.options), goal, product)
    assert r.r_type == 0.0 and r.reward == 0.0 and not r.reward >= 1


def test_type_reward_cascade(catalog, shirt):
    _, product = shirt
    same_query = next(p for p in catalog.products.values() if p.query == product.query and p.asin != product.asin)
    shares_title = replace(same_query, title=product.title)  # same content words: share 1
    assert type_reward(shares_title, product) == 1.0
    unrelated_title = replace(same_query, title="zzz qqq")
    assert type_reward(unrelated_title, product) == 0.0  # no shared word: 0 even with the same query


def test_human_goal_reward_uses_listed_options(catalog):
    raw = catalog.human_goals[0]
    product = catalog.products[raw["asin"]]
    goal = Goal(raw["asin"], raw["instruction"], tuple(raw["attributes"]), tuple(raw["options"]), 1e6)
    assert purchase_reward(product, list(goal.options), goal, product).reward == 1.0


# -- the env ---------------------------------------------------------------------------------


@pytest.fixture
def env():
    return WebShopEnv("train")


def find_goal_in_results(env):
    """Reset seeds until the instruction search lists the goal product on page 1."""
    for seed in range(50):
        obs, info = env.reset(seed=seed)
        assert set(info) >= INFO_KEYS and info["page"] == "search"
        obs, *_ = env.step(obs["candidates"].index(f"search[{env.goal.instruction}]"))
        command = goal_title_command(env, env.catalog.products[env.goal.asin])
        if command in obs["candidates"]:
            return obs, command
    pytest.fail("no goal found on the first results page")


def test_scripted_purchase_of_the_goal_reaches_reward_one(env):
    obs, command = find_goal_in_results(env)
    obs, reward, terminated, truncated, info = env.step(obs["candidates"].index(command))
    assert info["page"] == "item" and BUY in obs["candidates"]
    for option in env.goal.options:
        obs, reward, terminated, truncated, info = click(env, obs, f"click[{option}]")
        assert f"(selected: {option})" in obs["state"] and f"click[{option}]" not in obs["candidates"]
        assert reward == 0.0 and not terminated
    obs, reward, terminated, truncated, info = click(env, obs, BUY)
    assert reward == 1.0 and terminated and not truncated
    assert info["won"] and info["score"] == 1.0 and info["purchased_asin"] == env.goal.asin
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_page_flow_back_prev_next_and_details(env):
    obs, command = find_goal_in_results(env)
    assert obs["state"].split("\n")[1].startswith('Page: results for "') and "page 1 of" in obs["state"]
    assert PREV not in obs["candidates"] and BACK in obs["candidates"] and NEXT in obs["candidates"]
    assert obs["state"].split("\n")[2].startswith("1. ")
    page1 = obs["state"]
    obs, *_ = click(env, obs, NEXT)
    assert "page 2 of" in obs["state"] and PREV in obs["candidates"]
    obs, *_ = click(env, obs, PREV)
    assert obs["state"] == page1
    obs, *_ = click(env, obs, command)
    for detail in ("description", "features"):
        obs, *_ = click(env, obs, f"click[{detail}]")
        assert obs["state"].split("\n")[1].startswith(f"Page: {detail} of ")
        assert set(obs["candidates"]) == {PREV, BACK}
        obs, *_ = click(env, obs, PREV)
        assert obs["state"].split("\n")[1] == "Page: item"
    obs, *_ = click(env, obs, BACK)
    assert obs["state"].split("\n")[1] == "Page: search"


def test_truncates_after_max_steps_without_reward():
    env = WebShopEnv("eval", max_steps=3)
    obs, _ = env.reset(seed=0)
    for command in (f"search[{env.goal.instruction}]", BACK, f"search[{env.goal.instruction}]"):
        obs, reward, terminated, truncated, info = click(env, obs, command)
    assert truncated and not terminated and reward == 0.0 and info["steps"] == 3 and info["score"] == 0.0


def test_query_proposer_adds_search_candidates():
    seen = []

    def proposer(state):
        seen.append(state)
        return ["wool socks", "[bad] query", "wool socks"]

    env = WebShopEnv("eval", query_proposer=proposer)
    obs, _ = env.reset(seed=1)
    assert seen == [obs["state"]]
    assert set(obs["candidates"]) == {f"search[{env.goal.instruction}]", "search[wool socks]", "search[bad query]"}


def test_gymnasium_env_checker_passes():
    # check_env samples action slots at random: one slot, the search page's only command, stays
    # valid from the reset state it checks.
    env = WebShopEnv("train", max_actions=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)


def test_rule_baseline_buys_the_goal_often():
    result = evaluate(WebShopEnv("eval"), WebShopRuleAgent(), 50, 0)
    print(result)
    assert result.success_rate >= 0.3 and result.episode_len_mean <= 6  # measured 0.56 over 100 episodes


def test_bad_data_dir_and_split_are_named(tmp_path):
    with pytest.raises(WebShopDataError, match="env.webshop.data_dir.*items_shuffle_1000.json"):
        check_data_dir(tmp_path)
    with pytest.raises(ConfigError, match="env.webshop.eval_split"):
        load_config("experiments/webshop_ppo_prior.yaml", ["env.webshop.eval_split=test"])
    with pytest.raises(ValueError, match="env.max_steps"):
        WebShopEnv("train", max_steps=0)


def test_prior_path_proposes_queries_and_scores_them(ray_session):
    """Real path: the env runner's pipeline (embedder, cache actor, LLM pool) on WebShop."""
    from priorcache.envs.registry import env_config, make_env

    cfg = load_config("experiments/webshop_ppo_prior.yaml", ["prior.cache.namespace=test-webshop-env"])
    env = make_env(env_config(cfg.env, cfg.prior, use_prior=True, role="eval"))
    obs, info = env.reset(seed=0)
    text_env = env.unwrapped
    queries = [c for c in text_env._candidates if c.startswith("search[")]
    print("search candidates:", queries)
    assert f"search[{text_env.goal.instruction}]" in queries and len(queries) >= 2  # the LLM proposed some
    n = len(queries)
    assert obs["action_mask"].sum() == n and np.exp(obs["prior_logp"][:n]).sum() == pytest.approx(1.0, abs=1e-5)
    assert info["prior_source"] == "llm"
    again, info = env.reset(seed=0)  # same goal: proposals and prior come from the caches
    assert info["prior_source"] in ("near", "cache") and [c for c in text_env._candidates if c.startswith("search[")] == queries
    obs, reward, terminated, truncated, info = env.step(int(np.argmax(again["prior_logp"][:n])))
    assert info["page"] == "results" and obs["action_mask"].sum() >= 2
