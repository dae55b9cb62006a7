"""A small structural renderer for the YAML templates shipped in ``templates/``.

The template is parsed as YAML first, then walked:
- a string that is exactly ``"{{ path }}"`` is replaced by the value at ``path`` in the
  context, whatever its type (a mapping, a list, a number);
- such a value of ``None`` drops its key from the mapping (or its item from the list);
- ``{{ path }}`` inside a longer string is replaced by the value's text.

So templates stay valid YAML that GitOps users can read, and no expression language is
needed: every decision is made in Python (``manifests.py``).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import yaml

_WHOLE = re.compile(r"^\{\{\s*([A-Za-z_][\w.]*)\s*\}\}$")
_PART = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")
_DROP = object()


class TemplateError(Exception):
    """A template names a value the context lacks (a bug in deployer-kubernetes)."""


@cache
def load_template(name: str) -> Any:
    """The parsed template ``templates/NAME`` shipped in this package."""
    text = resources.files("deployer_kubernetes").joinpath("templates", name).read_text("utf-8")
    return yaml.safe_load(text)


def template_names() -> list[str]:
    folder = resources.files("deployer_kubernetes").joinpath("templates")
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".yaml"))


def render(name: str, context: dict[str, Any]) -> dict[str, Any]:
    """Render the template ``name`` with ``context`` into a fresh manifest dict."""
    result = _walk(load_template(name), context, name)
    if not isinstance(result, dict):
        raise TemplateError(f"{name} does not render to a mapping")
    return result


def _lookup(path: str, context: dict[str, Any], template: str) -> Any:
    value: Any = context
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise TemplateError(f"{template}: no value for {{{{ {path} }}}}")
    return value


def _walk(node: Any, context: dict[str, Any], template: str) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, child in node.items():
            value = _walk(child, context, template)
            if value is not _DROP:
                out[key] = value
        return out
    if isinstance(node, list):
        return [v for v in (_walk(c, context, template) for c in node) if v is not _DROP]
    if isinstance(node, str):
        whole = _WHOLE.match(node)
        if whole:
            value = _lookup(whole.group(1), context, template)
            return _DROP if value is None else _copy(value)
        return _PART.sub(lambda m: str(_lookup(m.group(1), context, template)), node)
    return node


def _copy(value: Any) -> Any:
    """A deep copy of plain data, so rendered manifests never share structure."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy(v) for v in value]
    return value
