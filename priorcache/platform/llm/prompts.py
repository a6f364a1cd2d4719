"""Versioned prompt templates, shipped as YAML data in `priorcache/platform/llm/prompts/`.

A template's id (`<name>-v<version>`) guards cached priors, so a changed text must get a new
version file rather than an edit of an old one. In-context demonstrations (expert episodes
from training games, `prior.llm.demos`) are appended to the prefix, which backends compute
once, so they cost nothing per call; the id then names their digest (`+demos-<sha8>`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Sequence
from importlib import resources
from importlib.resources.abc import Traversable

import yaml

_PROMPTS_PACKAGE = "priorcache.platform.llm"
_PROMPTS_DIR = "prompts"
_FIELDS = ("name", "version", "prefix", "state", "candidate")


@dataclass(frozen=True)
class PromptTemplate:
    """Fixed prefix (KV-cached by backends), per-state prompt and per-candidate continuation."""

    name: str
    version: int
    prefix: str
    state: str
    """`str.format` template of the per-state prompt, e.g. "{state}\\n>"."""
    candidate: str
    """`str.format` template of a candidate continuation with field `action`, e.g. " {action}"."""
    context: str = ""
    """Digest of what was added to the shipped prefix (demonstrations); "" for none."""

    @property
    def id(self) -> str:
        return f"{self.name}-v{self.version}" + (f"+{self.context}" if self.context else "")

    def with_demonstrations(self, episodes: Sequence[tuple[str, Sequence[str]]]) -> "PromptTemplate":
        """This template with expert episodes appended to the prefix, each as (first state, commands).

        An episode is written in the scored format, its opening state then every command on its
        own prompt line, so that the model sees whole routines from the start of a game rather
        than single steps (a full transcript of every state would not fit the context).
        """
        if not episodes:
            return self
        blocks = []
        for state, commands in episodes:
            # The later commands follow an empty state: "<state>\n> cmd\n> cmd ..." for the shipped templates.
            first, *rest = commands
            blocks.append(self.render_state(state=state) + self.render_candidate(first)
                          + "".join(self.render_state(state="") + self.render_candidate(c) for c in rest))
        demos = "\n\n".join(blocks) + "\n\n"
        digest = hashlib.sha256(demos.encode()).hexdigest()[:8]
        return replace(self, prefix=self.prefix + demos, context=f"demos-{digest}")

    def render_state(self, **fields: str) -> str:
        """The prompt that follows the prefix, with the template's named fields filled in."""
        return self.state.format(**fields)

    def render_candidate(self, action: str) -> str:
        """The text scored as the continuation of the prompt for one candidate action."""
        return self.candidate.format(action=action)


def _folder() -> Traversable:
    return resources.files(_PROMPTS_PACKAGE).joinpath(_PROMPTS_DIR)


def available_prompts() -> list[str]:
    """Ids of the templates shipped with the package."""
    return sorted(entry.name.removesuffix(".yaml") for entry in _folder().iterdir() if entry.name.endswith(".yaml"))


def load_prompt(prompt_id: str) -> PromptTemplate:
    """The shipped template `prompt_id` (config key `prior.llm.prompt`)."""
    available = available_prompts()
    if prompt_id not in available:
        raise ValueError(
            f"config key 'prior.llm.prompt' is {prompt_id!r}, which is not a shipped prompt template; "
            f"choose one of {', '.join(available)}"
        )
    data = yaml.safe_load(_folder().joinpath(f"{prompt_id}.yaml").read_text("utf-8"))
    missing = [key for key in _FIELDS if key not in data]
    if missing:
        raise ValueError(f"prompt template {prompt_id}.yaml lacks the keys {', '.join(missing)}")
    template = PromptTemplate(**{key: data[key] for key in _FIELDS})
    if template.id != prompt_id:
        raise ValueError(
            f"prompt template file {prompt_id}.yaml declares the id {template.id!r}; "
            "rename the file or fix its name/version so that they agree"
        )
    return template
