"""The configuration reference, generated from the config dataclasses and their docstrings.

`config_fields()` walks `ExperimentConfig` and its nested dataclasses and returns every leaf
key (`prior.cache.threshold`) with its type, default and attribute docstring (the string
literal under the field, read from the source with `ast`: Python keeps no attribute
docstrings at run time). `reference_page()` renders one markdown table per section; the docs
site builds `reference/config.md` from it (`tools/mkdocs_hooks.py`), so the reference cannot
drift from the schema. Read-only: it never loads or validates a config.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from dataclasses import MISSING, dataclass
from typing import Any

from priorcache.platform.config import ExperimentConfig


@dataclass(frozen=True)
class ConfigField:
    """One leaf key of the schema."""

    key: str
    """Dotted key as written in YAML paths and overrides (`prior.cache.threshold`)."""
    type: str
    """Annotation as written in the dataclass."""
    default: Any
    """Default value."""
    doc: str
    """Attribute docstring, on one line ("" when the field has none)."""


@dataclass(frozen=True)
class ConfigSection:
    """One dataclass of the schema and the leaf keys it holds directly."""

    prefix: str
    """Dotted key of the section ("" for the top level)."""
    name: str
    """Dataclass name."""
    doc: str
    """Dataclass docstring (its first paragraph)."""
    fields: tuple[ConfigField, ...]
    """Leaf keys, in declaration order."""


def attribute_docs(cls: type) -> dict[str, str]:
    """Field name -> the string literal right under its annotated assignment, on one line."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(inspect.cleandoc(after.value.value).split())
    return docs


def config_sections(schema: type = ExperimentConfig, prefix: str = "") -> list[ConfigSection]:
    """Every dataclass of the schema, depth first in declaration order."""
    docs = attribute_docs(schema)
    leaves: list[ConfigField] = []
    nested: list[ConfigSection] = []
    for f in dataclasses.fields(schema):
        key = f"{prefix}{f.name}"
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        if dataclasses.is_dataclass(default):
            nested += config_sections(type(default), f"{key}.")
        else:
            leaves.append(ConfigField(key, str(f.type), default, docs.get(f.name, "")))
    doc = inspect.cleandoc(schema.__doc__ or "").split("\n\n")[0].replace("\n", " ")
    return [ConfigSection(prefix.rstrip("."), schema.__name__, doc, tuple(leaves)), *nested]


def config_fields(schema: type = ExperimentConfig) -> list[ConfigField]:
    """Every leaf key of the schema."""
    return [f for section in config_sections(schema) for f in section.fields]


def select_fields(patterns: list[str], schema: type = ExperimentConfig) -> list[ConfigField]:
    """Fields named by `patterns`: an exact key, or `prefix.*` for every key under a section.

    Raises KeyError naming a pattern that matches nothing (a renamed key must fail the docs build).
    """
    fields = config_fields(schema)
    chosen: list[ConfigField] = []
    for pattern in patterns:
        if pattern.endswith(".*"):
            matched = [f for f in fields if f.key.startswith(pattern[:-1])]
        else:
            matched = [f for f in fields if f.key == pattern]
        if not matched:
            raise KeyError(f"config key pattern {pattern!r} matches no field of {schema.__name__}")
        chosen += [f for f in matched if f not in chosen]
    return chosen


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _default(value: Any) -> str:
    if isinstance(value, str):
        return f'`"{value}"`' if value else '`""`'
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value!r}`"


def markdown_table(fields: list[ConfigField]) -> str:
    """`| key | type | default | doc |` rows for `fields`."""
    rows = ["| key | type | default | doc |", "|---|---|---|---|"]
    rows += [f"| `{f.key}` | `{f.type}` | {_default(f.default)} | {_cell(f.doc)} |" for f in fields]
    return "\n".join(rows)


def reference_page(schema: type = ExperimentConfig) -> str:
    """The full reference: one section per dataclass."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from the config dataclasses in `priorcache/platform/config.py` when the site is "
        "built. An experiment YAML sets any of these keys; `key=value` on the command line overrides "
        "them (`priorcache run experiments/textworld_ppo_prior.yaml train.iterations=3`). A wrong key "
        "or value stops the run before Ray starts, naming the key. Defaults are the schema's: an "
        "experiment YAML usually sets some of them.",
        "",
    ]
    for section in config_sections(schema):
        if not section.fields:
            continue
        title = f"`{section.prefix}`" if section.prefix else "Top level"
        lines += [f"## {title}", "", f"{section.doc} (`{section.name}`)", "", markdown_table(list(section.fields)), ""]
    return "\n".join(lines)
