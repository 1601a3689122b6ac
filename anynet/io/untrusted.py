"""Reading untrusted JSON: parsed with limits, and checked against type hints.

Model files and checkpoints carry JSON that may have been written by anyone. :func:`parse_json`
refuses what is not UTF-8 JSON, duplicate keys and nesting deeper than :data:`MAX_JSON_DEPTH`;
:func:`matches` checks a parsed value against a type hint (``int``, ``float``, ``str``,
``bool``, ``X | None``, ``list[X]``, ``tuple[...]``, ``dict[str, X]``, ``Literal``), so that every
field is known to have its type before it is used.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any

__all__ = ["MAX_JSON_DEPTH", "finite", "hint_name", "kind_of", "matches", "parse_json", "short"]

#: the deepest JSON nesting read from a file
MAX_JSON_DEPTH = 32


def parse_json(raw, fail) -> Any:
    """Parse untrusted JSON: UTF-8, no duplicate keys, nested at most MAX_JSON_DEPTH deep."""

    def unique(pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
        return dict(pairs)

    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text, object_pairs_hook=unique)
    except RecursionError:
        raise fail(f"JSON nested more than {MAX_JSON_DEPTH} deep") from None
    except ValueError as exc:  # also UnicodeDecodeError, JSONDecodeError, over-long integers
        raise fail(f"not valid JSON: {exc}") from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise fail(f"JSON nested more than {MAX_JSON_DEPTH} deep")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return value


def kind_of(value) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def matches(value, hint) -> bool:
    """Whether JSON ``value`` fits type ``hint`` (int / float / str / bool, ``X | None``,
    ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]``, ``Literal``); other hints pass."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None) or hint is None:
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if origin is typing.Literal:
        return any(type(value) is type(a) and value == a for a in args)
    if hint in (list, tuple) or origin in (list, tuple):
        if not isinstance(value, list):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(matches, value, args))
        return not args or all(matches(v, args[0]) for v in value)
    if hint is dict or origin is dict:
        return isinstance(value, dict) and (
            not args or all(matches(k, args[0]) and matches(v, args[1]) for k, v in value.items())
        )
    if dataclasses.is_dataclass(hint):
        return isinstance(value, dict)
    simple = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}.get(hint)
    if simple is None:
        return True
    return isinstance(value, simple) and (hint is bool or not isinstance(value, bool))


def hint_name(hint) -> str:
    if typing.get_origin(hint) is None and isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("anynet.record.", "")


def finite(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(map(finite, value))
    return not isinstance(value, dict) or all(map(finite, value.values()))
