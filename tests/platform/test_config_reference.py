"""The configuration reference covers every key of the schema, with its docstring."""

import pytest

from priorcache.platform.config import ExperimentConfig, load_config, select
from priorcache.platform.config_reference import config_fields, markdown_table, reference_page, select_fields


def test_every_key_of_the_schema_is_listed_with_a_docstring_and_its_default():
    fields = config_fields()
    undocumented = [f.key for f in fields if not f.doc]
    assert not undocumented, f"config fields without a docstring: {undocumented}"
    defaults = ExperimentConfig()
    for f in fields:
        assert select(defaults, f.key) == f.default
    assert len({f.key for f in fields}) == len(fields)


def test_every_listed_key_is_a_valid_override():
    overrides = [f"{f.key}={f.default}" for f in config_fields()
                 if isinstance(f.default, (int, float)) and not isinstance(f.default, bool)]
    load_config(None, overrides)  # a key the loader does not know raises ConfigError


def test_select_fields_takes_keys_and_sections_and_refuses_unknown_ones():
    keys = [f.key for f in select_fields(["env.game.*", "algorithm.lr"])]
    assert keys == ["env.game.world_size", "env.game.nb_objects", "env.game.quest_length", "env.game.seed",
                    "algorithm.lr"]
    with pytest.raises(KeyError, match="algorithm.learning_rate"):
        select_fields(["algorithm.learning_rate"])


def test_tables_escape_pipes_and_the_page_has_a_section_per_dataclass():
    [threshold] = select_fields(["prior.cache.meta.kl_budget"])
    assert "KL(cached \\|\\| fresh)" in markdown_table([threshold])
    page = reference_page()
    for section in ("## `env.webshop`", "## `prior.cache.meta`", "## `algorithm`", "## Top level"):
        assert section in page
