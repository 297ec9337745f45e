"""What every YAML spec file (contracts, gates, …) needs to report errors a person can act on:
the line of each key path, duplicate keys refused, a "did you mean" for typos, and values
described in messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from mlcycle.errors import InvalidInputError

__all__ = ["describe", "did_you_mean", "index_lines"]


def index_lines(node: yaml.Node, path: str, lines: dict[str, int], source: str) -> None:
    """Record the 1-based line of every key path below *node* (``columns.age.min``,
    ``gates[1].metric``) and refuse duplicate keys, which PyYAML would otherwise resolve
    silently to the last one."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in seen:
                raise InvalidInputError(f"{source} line {line}: {child}: duplicate key",
                                        details={"field": child, "line": line})
            seen.add(key)
            lines[child] = line
            index_lines(value_node, child, lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = f"{path}[{i}]"
            lines[child] = item.start_mark.line + 1
            index_lines(item, child, lines, source)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'roc_auc'?)`` when a choice is close to *word*, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def describe(value: Any) -> str:
    """A value as an error message shows it: scalars by repr, containers by type."""
    return repr(value) if not isinstance(value, Mapping | list) else type(value).__name__
