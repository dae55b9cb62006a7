"""Patch semantics of the fake API server: merge patch (RFC 7386), JSON patch (RFC 6902),
strategic merge patch, and server-side apply with field ownership (managedFields-lite).

Field sets are sets of paths; a path is a tuple of ``("f", key)`` (a map field) and
``("k", '{"name":"model"}')`` (an item of a keyed list, like fieldsV1's ``k:{...}``).
"""

from __future__ import annotations

import copy
import json
from typing import Any

Path = tuple[tuple[str, str], ...]
FieldSet = set[Path]

# Lists merged by key (strategic merge patch and server-side apply); all others are atomic.
_KEYED = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "env": ("name",),
    "imagePullSecrets": ("name",),
    "conditions": ("type",),
}
# metadata fields nobody owns through apply
_SERVER_META = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "ownerReferences",
}


class PatchError(Exception):
    """A patch that cannot be applied (the server answers 422 or 400)."""


def list_keys(field: str, items: list[Any]) -> tuple[str, ...] | None:
    """The merge keys of list ``field`` (None for an atomic list)."""
    if field == "ports":
        first = next((i for i in items if isinstance(i, dict)), {})
        return ("containerPort", "protocol") if "containerPort" in first else ("port", "protocol")
    return _KEYED.get(field)


def _item_key(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    values = {k: item.get(k, "TCP" if k == "protocol" else None) for k in keys}
    return json.dumps(values, sort_keys=True, separators=(",", ":"))


# -- RFC 7386 merge patch ------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- strategic merge patch -----------------------------------------------------------------


def strategic_merge(target: Any, patch: Any, field: str = "") -> Any:
    """Kubernetes strategic merge: like a merge patch, but keyed lists merge item by item
    (``$patch: delete`` removes an item, ``$patch: replace`` replaces the list)."""
    if isinstance(patch, list):
        keys = list_keys(field, patch)
        base = target if isinstance(target, list) else []
        if keys is None or any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
            return [_strip(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
        result = [copy.deepcopy(i) for i in base]
        for item in patch:
            if not isinstance(item, dict):
                continue
            key = _item_key(item, keys)
            index = next(
                (
                    n
                    for n, i in enumerate(result)
                    if isinstance(i, dict) and _item_key(i, keys) == key
                ),
                None,
            )
            if item.get("$patch") == "delete":
                if index is not None:
                    result.pop(index)
            elif index is None:
                result.append(_strip(item))
            else:
                result[index] = strategic_merge(result[index], item)
        return result
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = strategic_merge(result.get(key), value, key)
    return result


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


# -- RFC 6902 JSON patch -------------------------------------------------------------------


def json_patch(target: Any, operations: list[dict[str, Any]]) -> Any:
    doc = copy.deepcopy(target)
    for op in operations:
        kind, path = op.get("op"), op.get("path", "")
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1] if parts else ""
        if kind == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != op.get("value"):
                raise PatchError(f"test failed at {path}")
        elif kind in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif kind == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                if kind == "replace" and last not in parent:
                    raise PatchError(f"replace of a missing path {path}")
                parent[last] = op["value"]
        elif kind == "remove":
            if isinstance(parent, list):
                parent.pop(int(last))
            elif last in parent:
                del parent[last]
            else:
                raise PatchError(f"remove of a missing path {path}")
        else:
            raise PatchError(f"unsupported JSON patch op {kind!r}")
    return doc


# -- server-side apply ---------------------------------------------------------------------


def fieldset(obj: dict[str, Any]) -> FieldSet:
    """The fields an applied (or written) configuration sets."""
    fields: FieldSet = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind", "status"):
            continue
        if key == "metadata" and isinstance(value, dict):
            meta = {k: v for k, v in value.items() if k not in _SERVER_META}
            _collect(meta, (("f", "metadata"),), fields)
        else:
            _collect_value(key, value, (("f", key),), fields)
    return fields


def _collect(obj: dict[str, Any], prefix: Path, fields: FieldSet) -> None:
    for key, value in obj.items():
        _collect_value(key, value, (*prefix, ("f", key)), fields)


def _collect_value(key: str, value: Any, path: Path, fields: FieldSet) -> None:
    if isinstance(value, dict) and value:
        _collect(value, path, fields)
    elif isinstance(value, list) and value and list_keys(key, value):
        keys = list_keys(key, value) or ()
        for item in value:
            item_path = (*path, ("k", _item_key(item, keys)))
            fields.add(item_path)
            _collect(item, item_path, fields)
    else:
        fields.add(path)


def get_path(obj: Any, path: Path) -> tuple[bool, Any]:
    node = obj
    for kind, key in path:
        if kind == "f":
            if not isinstance(node, dict) or key not in node:
                return False, None
            node = node[key]
        else:
            node = _find_item(node, path_list_field(path, key), key)
            if node is None:
                return False, None
    return True, node


def path_list_field(path: Path, key: str) -> str:
    """The name of the list a ``k:`` path element indexes."""
    for index, element in enumerate(path):
        if element == ("k", key):
            return path[index - 1][1]
    return ""


def _find_item(node: Any, field: str, key: str) -> Any:
    if not isinstance(node, list):
        return None
    keys = tuple(json.loads(key))
    for item in node:
        if isinstance(item, dict) and _item_key(item, keys) == key:
            return item
    return None


def remove_path(obj: dict[str, Any], path: Path) -> None:
    node: Any = obj
    for kind, key in path[:-1]:
        if kind == "f":
            node = node.get(key) if isinstance(node, dict) else None
        else:
            node = _find_item(node, "", key)
        if node is None:
            return
    kind, key = path[-1]
    if kind == "f" and isinstance(node, dict):
        node.pop(key, None)
    elif kind == "k" and isinstance(node, list):
        item = _find_item(node, "", key)
        if item is not None:
            node.remove(item)


def apply_merge(live: Any, applied: Any, field: str = "") -> Any:
    """Merge an applied configuration into the live object (keyed lists item by item)."""
    if isinstance(applied, dict):
        result = copy.deepcopy(live) if isinstance(live, dict) else {}
        for key, value in applied.items():
            result[key] = apply_merge(result.get(key), value, key)
        return result
    if isinstance(applied, list):
        keys = list_keys(field, applied)
        if keys is None or not isinstance(live, list):
            return copy.deepcopy(applied)
        result = []
        live_items = {_item_key(i, keys): i for i in live if isinstance(i, dict)}
        for item in applied:
            result.append(apply_merge(live_items.get(_item_key(item, keys)), item))
        # items set by other managers stay (ownership decides removal), after ours
        applied_keys = {_item_key(i, keys) for i in applied}
        result.extend(copy.deepcopy(i) for k, i in live_items.items() if k not in applied_keys)
        return result
    return copy.deepcopy(applied)


def to_fields_v1(fields: FieldSet) -> dict[str, Any]:
    """A field set in the wire format of managedFields[].fieldsV1."""
    tree: dict[str, Any] = {}
    for path in sorted(fields):
        node = tree
        for kind, key in path:
            node = node.setdefault(f"{kind}:{key}", {})
        if path and path[-1][0] == "k":
            node.setdefault(".", {})
    return tree


def owned_by_others(path: Path, others: list[FieldSet]) -> bool:
    """Whether another manager owns ``path`` or something inside it."""
    for fields in others:
        for owned in fields:
            if owned[: len(path)] == path:
                return True
    return False
