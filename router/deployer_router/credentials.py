"""The credential-refresh schedule of a signed backend: a signer's ``refresh`` runs in a
worker thread before the backend takes traffic, then when the signer asks to be called
again, with backoff while it fails (the last good credentials stay in use), and at once
when the backend rejects the credentials (401/403)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from deployer_router.proxy import Upstream
from deployer_router.redact import backend_label

log = logging.getLogger("deployer.router")

CREDENTIAL_RETRY = (1.0, 2.0, 5.0, 10.0, 30.0)
MIN_REFRESH_SECONDS = 1.0
MAX_REFRESH_SECONDS = 3600.0
# A backend that rejects the router's credentials (401/403) gets them refreshed at once,
# at most this often (a key rotated in the cloud is picked up without waiting).
REJECTED_REFRESH_GAP = 5.0


async def refresh_once(upstream: Upstream, timeout: float) -> float | None:
    """Refresh in a worker thread; seconds until the next refresh, None on failure."""
    assert upstream.signer is not None
    loop = asyncio.get_running_loop()
    try:
        seconds = await asyncio.wait_for(
            loop.run_in_executor(None, upstream.signer.refresh),
            timeout,
        )
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        failing_before = upstream.state.credentials_ok
        # keep serving with the last good credentials; only a signer that never worked
        # keeps the backend out
        if not upstream.state.credentials_seen:
            upstream.state.set_credentials(False, reason)
        if failing_before:
            log.warning(
                "credential refresh failed",
                extra={**backend_label(upstream.name, upstream.config.url), "error": reason},
            )
        return None
    upstream.state.set_credentials(True)
    return float(seconds)


async def refresh_loop(upstream: Upstream, timeout: Callable[[], float]) -> None:
    """Refresh on the signer's schedule, and early when the backend rejects the
    credentials (``Upstream.rejected``); ``timeout`` (read each time, so reloads change
    it) bounds one refresh."""
    failures = 0
    rejected = upstream.rejected
    while True:
        refreshed = time.monotonic()
        seconds = await refresh_once(upstream, timeout())
        if seconds is None:
            delay = CREDENTIAL_RETRY[min(failures, len(CREDENTIAL_RETRY) - 1)]
            failures += 1
        else:
            failures = 0
            delay = min(max(seconds, MIN_REFRESH_SECONDS), MAX_REFRESH_SECONDS)
        rejected.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(rejected.wait(), delay)
            log.warning(
                "backend rejected the router's credentials: refreshing them now",
                extra=backend_label(upstream.name, upstream.config.url),
            )
            gap = REJECTED_REFRESH_GAP - (time.monotonic() - refreshed)
            await asyncio.sleep(max(0.0, min(gap, delay)))
