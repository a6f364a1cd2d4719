"""In-context demonstrations for the prior's prompt: expert episodes chosen from a demos file.

`priorcache demos <domain>` records expert episodes on training games; `prior.llm.demos`
points the prior at such a file and `prior.llm.demo_episodes` says how many episodes the
prompt prefix shows (`PromptTemplate.with_demonstrations`).
"""

from __future__ import annotations

from pathlib import Path

from priorcache.platform.config import ConfigError


def demonstration_episodes(path: str | Path, count: int) -> list[tuple[str, list[str]]]:
    """`count` won episodes of a demos file as (opening state, expert commands), spread evenly
    over the file so that they cover different games and task types (files are in game order)."""
    from priorcache.demos import load_demos

    episodes: dict[tuple[str, int], tuple[str, list[str]]] = {}
    for step in load_demos(path):
        if step.won:
            episodes.setdefault((step.game, step.episode), (step.state, []))[1].append(step.action)
    chosen = list(episodes.values())
    if count < len(chosen):
        stride = len(chosen) / count
        chosen = [chosen[int(i * stride)] for i in range(count)]
    return chosen


def resolve_demos(path: str) -> str:
    """`prior.llm.demos` as an absolute path (Ray actors may run elsewhere), checked to exist."""
    if not path:
        return path
    resolved = Path(path).resolve()
    if not resolved.exists():
        raise ConfigError(
            f"config key 'prior.llm.demos': {path} does not exist; write it with `priorcache demos <domain>` "
            "(it lands in .cache/demos/<domain>) or leave it empty"
        )
    return str(resolved)
