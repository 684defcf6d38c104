"""Reading config YAML strictly: what a file says is what it means.

``yaml.safe_load`` lets the last of two equal keys win silently (``hidden: 8`` then
``hidden: 64``, or two ``train:`` sections) and expands aliases (``*name``), so that a few
lines can stand for billions of values. ``load_config_yaml`` refuses both, in one
``ConfigError`` naming the key or alias and its line.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml

from irrepscope.errors import ConfigError, quoted


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` without duplicate keys and without aliases."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ConfigError(f"line {event.start_mark.line + 1}: the alias *{event.anchor} "
                              f"repeats a value written elsewhere; configs do not take YAML "
                              f"aliases (*name) or anchors (&name): write the value out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Hashable, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, Hashable) and key in seen:
                raise ConfigError(f"line {line}: key {quoted(key)} is given twice (lines "
                                  f"{seen[key]} and {line}); the last would silently win, so "
                                  f"keep one")
            if isinstance(key, Hashable):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_config_yaml(text: str) -> Any:
    """The plain data of YAML ``text``; ``ConfigError`` ("line N: ...") for a duplicate key or
    an alias, ``yaml.YAMLError`` for text that is not YAML."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
