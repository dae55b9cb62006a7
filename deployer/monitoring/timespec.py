"""``--since 24h`` / ``--since 2026-12-07T00:00:00Z`` and ``--window 1h``: durations
(a number and s, m, h or d) and ISO 8601 times."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from deployer.errors import UsageError
from deployer.providers.monitoring import parse_time

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def duration(text: str, option: str) -> timedelta:
    """``30m``, ``1h``, ``7d``; a UsageError naming ``option`` otherwise."""
    found = _DURATION.match(text)
    if not found or float(found.group(1)) <= 0:
        raise UsageError(
            f"{option} {text!r}: expected a positive duration such as 90s, 30m, 24h or 7d"
        )
    return timedelta(**{_UNITS[found.group(2)]: float(found.group(1))})


def since(text: str | None, now: datetime | None = None) -> datetime | None:
    """The start of ``--since``: ``now`` minus a duration, or an ISO 8601 time."""
    if text is None:
        return None
    if _DURATION.match(text):
        return (now or datetime.now(timezone.utc)) - duration(text, "--since")
    try:
        return parse_time(text)
    except ValueError:
        raise UsageError(
            f"--since {text!r}: expected a duration (24h, 30m, 7d) or an ISO 8601 time "
            "(2026-12-07T00:00:00Z)"
        ) from None
