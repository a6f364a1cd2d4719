"""MkDocs hooks of the docs site (`mkdocs.yml: hooks`): generated pages and repository links.

- `reference/config.md` is generated from the config dataclasses at build time
  (`priorcache.platform.config_reference`), so it always matches the schema.
- A line `<!-- config: KEY KEY prefix.* -->` in a page becomes the table of those keys (type,
  default, docstring): algorithm and environment pages show their settings without copying
  docstrings. A key that no longer exists fails the build.
- Links from a page to repository files outside `docs/` (`../cluster/README.md`) work on
  GitHub but not in the site; they become code spans naming the file. A link to a file that
  does not exist is left alone, so `mkdocs build --strict` still reports it.

Nothing here writes outside the site directory.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

# Document the checkout that holds this file, even where the environment's editable install of
# priorcache points at another checkout (git worktrees sharing one virtual environment).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from priorcache.platform.config_reference import markdown_table, reference_page, select_fields  # noqa: E402

CONFIG_PAGE = "reference/config.md"
_CONFIG_MARKER = re.compile(r"^<!-- config: (?P<keys>[^>]+?) -->$", re.M)
_RELATIVE_LINK = re.compile(r"\[(?P<text>[^\]]+)\]\((?P<target>\.\./[^)#\s]+)\)")


def on_files(files: Files, config: Any) -> Files:
    """Add the generated configuration reference."""
    files.append(File.generated(config, CONFIG_PAGE, content=reference_page()))
    return files


def on_page_markdown(markdown: str, page: Page, config: Any, files: Files) -> str:
    """Expand config markers; turn links to repository files outside docs/ into code spans."""
    markdown = _CONFIG_MARKER.sub(lambda m: markdown_table(select_fields(m["keys"].split())), markdown)
    docs_dir = Path(config["docs_dir"]).resolve()
    repo = docs_dir.parent
    page_dir = (docs_dir / page.file.src_uri).parent

    def outside_docs(match: re.Match[str]) -> str:
        target = (page_dir / match["target"]).resolve()
        if target.is_relative_to(docs_dir) or not target.exists() or not target.is_relative_to(repo):
            return match[0]
        path = target.relative_to(repo).as_posix()
        text = match["text"].strip("`")
        return f"`{path}`" if text == path else f"{match['text']} (`{path}`)"

    return _RELATIVE_LINK.sub(outside_docs, markdown)
