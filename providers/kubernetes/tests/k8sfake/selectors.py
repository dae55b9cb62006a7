"""Label and field selectors, as the API server parses them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Matcher = Callable[[dict[str, str]], bool]

_SET = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*$")


class SelectorError(ValueError):
    pass


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts


def label_selector(text: str | None) -> Matcher:
    """A matcher for ``a=b,c!=d,e in (f,g),!h,i``."""
    if not text:
        return lambda _labels: True
    tests: list[Matcher] = []
    for part in _split(text):
        if match := _SET.match(part):
            key, op, values = match.group(1), match.group(2), match.group(3)
            options = {v.strip() for v in values.split(",") if v.strip()}
            if op == "in":
                tests.append(lambda ls, k=key, o=options: ls.get(k) in o)
            else:
                tests.append(lambda ls, k=key, o=options: ls.get(k) not in o)
        elif match := _EQ.match(part):
            key, op, value = match.groups()
            if op == "!=":
                tests.append(lambda ls, k=key, v=value: ls.get(k) != v)
            else:
                tests.append(lambda ls, k=key, v=value: ls.get(k) == v)
        elif match := _EXISTS.match(part):
            negate, key = match.groups()
            if negate:
                tests.append(lambda ls, k=key: k not in ls)
            else:
                tests.append(lambda ls, k=key: k in ls)
        else:
            raise SelectorError(f"unable to parse requirement: {part!r}")
    return lambda labels: all(test(labels) for test in tests)


def field_selector(text: str | None) -> Callable[[dict[str, Any]], bool]:
    """A matcher for ``metadata.name=x,involvedObject.kind=Pod,status.phase!=Running``."""
    if not text:
        return lambda _obj: True
    tests = []
    for part in _split(text):
        match = _EQ.match(part)
        if not match:
            raise SelectorError(f"invalid field selector: {part!r}")
        path, op, value = match.groups()
        tests.append((path.split("."), op == "!=", value))

    def matches(obj: dict[str, Any]) -> bool:
        for path, negate, value in tests:
            node: Any = obj
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            if (str(node) == value) == negate:
                return False
        return True

    return matches


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector object (matchLabels + matchExpressions) or a Service's plain map."""
    if not selector:
        return False
    match_labels = selector.get(
        "matchLabels",
        selector if "matchExpressions" not in selector and "matchLabels" not in selector else {},
    )
    if any(labels.get(k) != v for k, v in (match_labels or {}).items()):
        return False
    for expression in selector.get("matchExpressions", []) or []:
        key, op, values = expression["key"], expression["operator"], expression.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True
