"""Validation errors located in the YAML they came from: "line N: field: message".

Shared by deployer.yaml (deployer.config) and router.yaml (deployer.router.manifest);
needs only pyyaml, so the router image can ship it.
"""

from __future__ import annotations

from typing import Any

import yaml


def describe_error(error: Any, root: yaml.Node | None, fields: tuple[str, ...] = ()) -> str:
    """One pydantic error as 'line N: field: message', the line found in ``root``.

    A whole-document validator's message that starts with one of ``fields`` followed by a
    dot ("model.path: required ...") is placed at that field.
    """
    loc = tuple(error["loc"])
    field = ".".join(str(p) for p in loc) or "(top level)"
    message = _humanise(error)
    if not loc and message.startswith(tuple(f"{name}." for name in fields)):
        field, _, message = message.partition(": ")
        loc = tuple(field.split("."))
    line = _line_of(root, loc)
    where = f"line {line}: " if line else ""
    return f"{where}{field}: {message}"


def _humanise(error: Any) -> str:
    kind, msg = error["type"], error["msg"]
    given = error.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; see the config reference in README.md)"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    msg = msg.replace("Input should be", "expected").replace("String should", "should")
    if given is not None and not isinstance(given, (dict, list)):
        msg += f" (got {given!r})"
    return msg


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (or of its nearest existing parent)."""
    line = None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line
