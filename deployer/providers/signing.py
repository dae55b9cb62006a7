"""Request signing for the router: what a provider's ``router_signer`` returns.

A signer has two halves, so the router's hot path never waits on the network:

- ``refresh()`` fetches or renews credentials. It may block (the router runs it in a
  worker thread) and returns how many seconds from now it wants to be called again:
  before the credentials expire, with a margin (``refresh_after`` computes it). The
  router calls it once before the backend takes traffic, then on that schedule; a
  failure is retried with backoff while the last good credentials stay in use.
- ``sign(method, url, headers, body)`` returns the headers to add to one request. It runs
  on the event loop for every request: no I/O, no blocking, cheap.

Credentials are never logged, and never part of an error message: errors carry the
exception type and message of the credential source, never header values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Protocol, runtime_checkable

FOREVER = math.inf


@runtime_checkable
class Signer(Protocol):
    """Adds credentials to requests for one backend."""

    def refresh(self) -> float:
        """Fetch or renew credentials (may block). Seconds until the next call."""
        ...

    def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> Mapping[str, str]:
        """Headers to add to this request (lower-case names). No I/O: runs per request.

        ``url`` is the full URL sent to, ``headers`` the request headers already decided
        (lower-case names, ``host`` included), ``body`` the exact bytes sent.
        """
        ...


class RouterBackend(Protocol):
    """What ``router_signer`` is given: one router.yaml backend (read-only)."""

    @property
    def name(self) -> str: ...

    @property
    def provider(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def region(self) -> str | None: ...

    @property
    def auth(self) -> Any:
        """The backend's ``auth`` block: ``kind`` plus the kind's options."""
        ...

    @property
    def target(self) -> dict[str, Any]:
        """The target's deployer.yaml options, as push recorded them."""
        ...


def refresh_after(expiry: datetime | None) -> float:
    """Seconds until credentials expiring at ``expiry`` should be renewed: five minutes
    early, or half-way for short-lived ones. For signers' ``refresh``."""
    if expiry is None:
        return FOREVER
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=timezone.utc)
    left = (expiry - datetime.now(timezone.utc)).total_seconds()
    return left - 300 if left > 600 else max(left / 2, 0.2)
