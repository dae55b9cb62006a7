"""``deployer history``: each target's versions over time, from the audit log, merged with
what the target says is live now (its status, and the annotations its provider put on
the live version: ``Status.details["annotations"]``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from deployer.audit.lookup import settled

if TYPE_CHECKING:
    from deployer.providers import Status


@dataclass(frozen=True)
class HistoryEntry:
    """One action on one target: a push, a rollback, a destroy."""

    seq: int | None
    time: str | None
    action: str
    release: str | None
    version: str | None
    previous_version: str | None
    outcome: str
    who: str | None
    why: Mapping[str, Any]
    metrics: Mapping[str, Any]
    override: Mapping[str, Any] | None = None
    live: bool = False


@dataclass(frozen=True)
class TargetHistory:
    """A target's entries, oldest first, and what it serves now (when asked)."""

    target: str
    entries: list[HistoryEntry]
    state: str | None = None
    live_version: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _entry(record: Mapping[str, Any], target: str) -> HistoryEntry:
    mine = (record.get("targets") or {}).get(target) or {}
    interrupted = record.get("outcome") == "interrupted"
    return HistoryEntry(
        seq=record.get("seq"),
        time=record.get("time"),
        action=str(record.get("action")),
        release=record.get("release"),
        version=mine.get("version"),
        previous_version=mine.get("previous_version"),
        outcome="interrupted" if interrupted else str(mine.get("outcome", record.get("outcome"))),
        who=(record.get("who") or {}).get("name"),
        why=record.get("why") or {},
        metrics=record.get("metrics") or {},
        override=record.get("override"),
    )


def target_history(
    records: Iterable[Mapping[str, Any]],
    target: str,
    status: Status | None = None,
    note: str | None = None,
) -> TargetHistory:
    """``target``'s history; with its ``status``, the entry of the live version is marked
    (the latest one naming it) and the live version's annotations are shown."""
    entries = [_entry(r, target) for r in settled(records) if target in (r.get("targets") or {})]
    if status is None:
        return TargetHistory(target, entries, note=note)
    live = status.version if status.state != "absent" else None
    for index in range(len(entries) - 1, -1, -1):
        if live is not None and entries[index].version == live:
            entries[index] = HistoryEntry(**{**asdict(entries[index]), "live": True})
            break
    annotations = status.details.get("annotations") if isinstance(status.details, dict) else None
    return TargetHistory(
        target,
        entries,
        status.state,
        live,
        dict(annotations) if isinstance(annotations, Mapping) else {},
        note,
    )


def logged_targets(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every target the log names, in the order first seen."""
    seen: dict[str, None] = {}
    for record in records:
        for name in record.get("targets") or {}:
            seen.setdefault(str(name), None)
    return list(seen)
