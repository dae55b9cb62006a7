"""What every renderer returns (``Rendered``) and the helpers they share."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Rendered:
    """A rendered document (``document``: what ``text`` serialises), the rules a platform
    cannot express (``skipped``: name, why) and notes."""

    fmt: str
    document: Any
    text: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.fmt,
            "document": self.document,
            "text": self.text,
            "skipped": [{"rule": n, "reason": r} for n, r in self.skipped],
            "notes": list(self.notes),
        }


def as_json(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def placeholders(
    scope: Mapping[str, str], names: tuple[str, ...]
) -> tuple[dict[str, str], list[str]]:
    """``scope`` completed with ``<NAME>`` placeholders for the missing ``names``, and a note
    naming them."""
    full = dict(scope)
    missing = [n for n in names if not full.get(n)]
    for n in missing:
        full[n] = f"<{n}>"
    notes = [f"replace the placeholders {', '.join(f'<{n}>' for n in missing)}"] if missing else []
    return full, notes
