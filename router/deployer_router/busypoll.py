"""Busy polling: keep the event loop polling without sleeping while requests flow.

On a virtual machine each sleep in ``epoll_wait`` may hand the vCPU back to the hypervisor,
and waking it for the next packet costs tens of microseconds to milliseconds; at a few
thousand requests a second those wake-ups are most of a proxy's added latency. HAProxy's
``busy-polling`` answers this by always polling with a null timeout. The router does the
same while traffic flows and goes back to sleeping once nothing has arrived for
``idle_seconds`` and no request is in flight, so an idle router costs no CPU.

How: a callback that schedules itself again with ``call_soon``. While a ready callback
exists, uvloop (libuv) and asyncio poll with a zero timeout, so every turn of the loop
is one ``epoll_wait(0)`` and one call of ``_spin``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class Traffic(Protocol):
    """What the poller watches: requests received so far and requests being answered."""

    requests: int
    in_flight: int


class BusyPoller:
    """Spins the loop from the first request until ``idle_seconds`` without any."""

    def __init__(
        self,
        traffic: Traffic,
        idle_seconds: float,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.traffic = traffic
        self.idle_seconds = idle_seconds
        self.enabled = True
        self.running = False
        self.spins = 0  # turns of the loop spent polling (for tests and /metrics)
        self._loop = loop
        self._clock = clock
        self._seen = -1
        self._deadline = 0.0

    def wake(self) -> None:
        """A request arrived: start spinning if not already (cheap when running)."""
        if self.running or not self.enabled:
            return
        self.running = True
        self._seen = -1
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        loop.call_soon(self._spin)

    def _spin(self) -> None:
        # Only this callback ends a spin (``running`` is True while one is scheduled), so
        # ``wake`` never starts a second one; turning ``enabled`` off ends it next turn.
        if not self.enabled:
            self.running = False
            return
        self.spins += 1
        traffic = self.traffic
        now = self._clock()
        if traffic.requests != self._seen or traffic.in_flight > 0:
            self._seen = traffic.requests
            self._deadline = now + self.idle_seconds
        elif now >= self._deadline:
            self.running = False
            return
        assert self._loop is not None
        self._loop.call_soon(self._spin)
