"""What the audit log says about a target's versions: the metrics recorded for a version
(for the gates' ``live`` and ``previous``), and each target's history.

A version's record on a target is the latest push record naming that version there with
a target outcome that left it deployed (``updated``, ``unchanged``) or, for a push whose
outcome was never written (``pending``: the process died), the started record: the
provider reporting the version live is what makes it count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from deployer.gates import Baseline

DEPLOYED = ("updated", "unchanged", "pending")


def push_record(
    records: Iterable[Mapping[str, Any]], target: str, version: str
) -> Mapping[str, Any] | None:
    """The latest push record that deployed ``version`` on ``target`` (None: none)."""
    found = None
    for record in settled(records):  # a failed push's started record does not count
        if record.get("action") != "push":
            continue
        entry = (record.get("targets") or {}).get(target) or {}
        if entry.get("version") == version and entry.get("outcome") in DEPLOYED:
            found = record
    return found


def baseline(records: Sequence[Mapping[str, Any]], target: str, live: str | None) -> Baseline:
    """``target``'s live version (``live``, from its provider) and the one before it, with
    the metrics recorded at their pushes (None when a version has no record)."""
    if live is None:
        return Baseline(target)
    record = push_record(records, target, live)
    if record is None:
        return Baseline(target, live)
    previous = ((record.get("targets") or {}).get(target) or {}).get("previous_version")
    earlier = push_record(records, target, previous) if previous else None
    return Baseline(
        target,
        live,
        record.get("metrics") or {},
        previous,
        (earlier.get("metrics") or {}) if earlier is not None else None,
    )


def settled(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One record per release: its outcome record, else its started one (marked
    ``interrupted``), in the order the releases began."""
    latest: dict[Any, Mapping[str, Any]] = {}
    for record in records:
        key = record.get("release") or ("seq", record.get("seq"))
        latest[key] = record
    return [
        {**record, "outcome": "interrupted"} if record.get("outcome") == "started" else record
        for record in latest.values()
    ]
