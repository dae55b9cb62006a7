"""What differs between a live object and what a server-side dry run says it would become."""

from __future__ import annotations

from typing import Any

MAX_SHOWN = 6


def compared(obj: dict[str, Any]) -> dict[str, Any]:
    """The parts a change is made of: labels, annotations and everything but status."""
    meta = obj.get("metadata") or {}
    body = {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}
    return {
        "metadata": {
            "labels": meta.get("labels") or {},
            "annotations": meta.get("annotations") or {},
        },
        **body,
    }


def differences(live: Any, wanted: Any, path: str = "") -> list[str]:
    """``path: old -> new`` for every leaf that differs."""
    if isinstance(live, dict) and isinstance(wanted, dict):
        found: list[str] = []
        for key in sorted(set(live) | set(wanted), key=str):
            child = f"{path}.{key}" if path else str(key)
            if key not in live:
                found.append(f"{child}: + {_short(wanted[key])}")
            elif key not in wanted:
                found.append(f"{child}: - {_short(live[key])}")
            else:
                found.extend(differences(live[key], wanted[key], child))
        return found
    if isinstance(live, list) and isinstance(wanted, list) and len(live) == len(wanted):
        found = []
        for index, (old, new) in enumerate(zip(live, wanted, strict=True)):
            found.extend(differences(old, new, f"{path}[{index}]"))
        return found
    if live != wanted:
        return [f"{path}: {_short(live)} -> {_short(wanted)}"]
    return []


def summary(changes: list[str]) -> str:
    """The first few changes, the spec's before the labels' and annotations'."""
    changes = sorted(changes, key=lambda c: c.startswith("metadata."))
    shown = "; ".join(changes[:MAX_SHOWN])
    more = len(changes) - MAX_SHOWN
    return f"{shown}; and {more} more" if more > 0 else shown


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."
