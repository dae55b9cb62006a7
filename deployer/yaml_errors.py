"""YAML configuration documents (deployer.yaml, router.yaml): bounded loading, and
validation errors located in them ("line N: field: message").

``load_yaml`` composes a document once, with bounds: nesting depth
(``DEPLOYER_MAX_YAML_DEPTH``, default 64 levels), nodes with aliases expanded
(``DEPLOYER_MAX_YAML_NODES``, default 1,000,000: a "billion laughs" fails at once),
no duplicate keys. Every problem is a ``ConfigError`` (exit 2) naming the source and line.

Needs only PyYAML and ``deployer.errors``, so the router image can ship it.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    MappingStartEvent,
    SequenceStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.resolver import Resolver

from deployer.errors import ConfigError, env_limit

DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_NODES = 1_000_000
MAX_DEPTH_ENV = "DEPLOYER_MAX_YAML_DEPTH"
MAX_NODES_ENV = "DEPLOYER_MAX_YAML_NODES"
_MERGE_TAG = "tag:yaml.org,2002:merge"

try:  # libyaml's parser when PyYAML was built with it: the same events, much faster
    from yaml.cyaml import CParser as _Parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - PyYAML without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        """PyYAML's pure-Python reader, scanner and parser."""

        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)


class _Limit(Exception):
    """A bound was crossed at ``line`` (1-based)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _BoundedComposer(Composer):
    """PyYAML's composer, counting depth and expanded nodes and refusing duplicate keys."""

    max_depth = DEFAULT_MAX_DEPTH
    max_nodes = DEFAULT_MAX_NODES
    # the parser's, found through the loader's other base classes
    check_event: Any
    peek_event: Any
    get_event: Any

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._nodes = 0  # nodes so far, each alias counted as the nodes it stands for
        self._sizes: dict[int, int] = {}  # id(node) -> its nodes with aliases expanded
        self._open: set[str] = set()  # anchors of the collections being composed

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(AliasEvent):
            return self._alias()
        event = self.peek_event()
        line = event.start_mark.line + 1
        if event.anchor is not None and event.anchor in self.anchors:
            first = self.anchors[event.anchor].start_mark.line + 1
            raise _Limit(line, f"duplicate anchor &{event.anchor} (first at line {first})")
        if not isinstance(event, (SequenceStartEvent, MappingStartEvent)):
            self._count(1, line)
            scalar: Node = super().compose_node(parent, index)  # type: ignore[assignment]
            return scalar
        self._depth += 1
        if self._depth > self.max_depth:
            raise _Limit(
                line,
                f"nested deeper than {self.max_depth} levels "
                f"(raise the limit with {MAX_DEPTH_ENV}=LEVELS)",
            )
        before = self._nodes
        self._count(1, line)
        if event.anchor is not None:
            self._open.add(event.anchor)
        node: Node = super().compose_node(parent, index)  # type: ignore[assignment]
        self._open.discard(event.anchor or "")
        self._depth -= 1
        self._sizes[id(node)] = self._nodes - before
        return node

    def _alias(self) -> Node:
        """The node an alias names, counted as all the nodes it stands for."""
        event = self.get_event()
        line = event.start_mark.line + 1
        node: Node | None = self.anchors.get(event.anchor)
        if node is None:
            raise _Limit(line, f"undefined alias *{event.anchor}")
        if event.anchor in self._open:
            raise _Limit(line, f"alias *{event.anchor} refers to a node that contains it")
        self._count(self._sizes.get(id(node), 1), line)
        return node

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        node: MappingNode = super().compose_mapping_node(anchor)
        seen: dict[tuple[str, str], int] = {}
        for key, _value in node.value:
            if not isinstance(key, ScalarNode) or key.tag == _MERGE_TAG:
                continue
            line = key.start_mark.line + 1
            first = seen.get((key.tag, key.value))
            if first is not None:
                lines = f"lines {first} and {line}" if first != line else f"twice on line {line}"
                raise _Limit(line, f"duplicate key {key.value!r} ({lines})")
            seen[(key.tag, key.value)] = line
        return node

    def _count(self, nodes: int, line: int) -> None:
        self._nodes += nodes
        if self._nodes > self.max_nodes:
            raise _Limit(
                line,
                f"more than {self.max_nodes:,} nodes with aliases expanded "
                f"(raise the limit with {MAX_NODES_ENV}=NODES)",
            )


class _Loader(_BoundedComposer, _Parser, SafeConstructor, Resolver):  # type: ignore[misc,valid-type,unused-ignore]
    """A safe loader whose composition is bounded (the parser's events, our composer)."""

    def __init__(self, stream: str, max_depth: int, max_nodes: int) -> None:
        _Parser.__init__(self, stream)
        _BoundedComposer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self.max_depth = max_depth
        self.max_nodes = max_nodes

    def get_single_node(self) -> Node | None:
        return Composer.get_single_node(self)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        """A scalar the constructor cannot convert (2024-13-45) is named with its line."""
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:
            value = f" {shown(node.value)}" if isinstance(node, ScalarNode) else ""
            raise _Limit(node.start_mark.line + 1, f"invalid value{value}: {exc}") from None


def load_yaml(text: str, source: str) -> tuple[Any, Node | None]:
    """The data of one YAML document and its node tree; a ConfigError naming ``source`` and
    the line for invalid YAML or a crossed limit."""
    loader = _Loader(
        text,
        max_depth=int(env_limit(MAX_DEPTH_ENV, DEFAULT_MAX_DEPTH)),
        max_nodes=int(env_limit(MAX_NODES_ENV, DEFAULT_MAX_NODES)),
    )
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except _Limit as exc:
        raise ConfigError(source, [f"line {exc.line}: {exc.message}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, [_describe_yaml_error(exc, text)]) from None
    finally:
        loader.dispose()
    return data, root


def _describe_yaml_error(exc: yaml.YAMLError, text: str) -> str:
    """PyYAML's error as "line N, column M: invalid YAML: problem"."""
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        return f"line {line}: invalid YAML: {exc.reason} (character #x{exc.character:04x})"
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = ""
    if mark is not None:
        last = text.count("\n") + 1
        line, column = mark.line + 1, mark.column + 1
        if line > last:  # libyaml may mark the end of the stream past the last line
            line, column = last, len(text) - text.rfind("\n")
        where = f"line {line}, column {column}: "
    context, problem = getattr(exc, "context", None), getattr(exc, "problem", None)
    if not problem:
        return f"{where}invalid YAML: {exc}"
    return f"{where}invalid YAML: {context + ', ' if context else ''}{problem}"


# -- validation errors ---------------------------------------------------------------------


MAX_PROBLEMS = 20  # reported per file; the rest are counted


def describe_errors(
    errors: list[Any], root: yaml.Node | None, fields: tuple[str, ...] = ()
) -> list[str]:
    """The first ``MAX_PROBLEMS`` pydantic errors described by ``describe_error``, then a
    line counting the others (a file with 20,000 bad entries gets a short answer)."""
    problems = [describe_error(error, root, fields) for error in errors[:MAX_PROBLEMS]]
    if len(errors) > MAX_PROBLEMS:
        problems.append(f"... and {len(errors) - MAX_PROBLEMS} more problems")
    return problems


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
    line = line_of(root, loc)
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
        msg += f" (got {shown(given)})"
    return msg


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (a value may be megabytes long)."""
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        return f"a {type(value).__name__} too long to show"
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
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
