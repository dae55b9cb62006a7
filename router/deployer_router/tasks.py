"""Stopping the router's background tasks so that none is left pending when its loop
closes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("deployer.router")

STOP_SECONDS = 5.0


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]], timeout: float = STOP_SECONDS) -> None:
    """Cancel ``tasks`` and wait until they have finished (up to ``timeout`` s), so that
    none is left pending when the loop closes. A cancellation can be lost: before Python
    3.12, ``asyncio.wait_for`` returns its result instead of raising when the task is
    cancelled just as the awaited future completes. So a task still running is cancelled
    again, every 0.1 s."""
    pending = {task for task in tasks if not task.done()}
    deadline = time.monotonic() + timeout
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - time.monotonic()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(0.1, left))
    for task in pending:
        log.warning("a background task did not stop when cancelled", extra={"task": repr(task)})
