"""The retry budget and what counts as retryable.

Like Finagle's and Envoy's budgets: a retry is allowed only while the retries of the last
``window`` seconds stay within ``percent`` of the requests of that window, plus a small
floor of ``min_per_second`` so a quiet router can still retry. During an outage every
request fails, and without a budget each one would become ``attempts`` upstream requests;
with it the upstream load stays within (1 + percent/100) of the client load.
"""

from __future__ import annotations

import math

BUCKETS = 10


class RetryBudget:
    """Counts requests and retries over a sliding window of ``BUCKETS`` time slices."""

    __slots__ = (
        "_end",
        "_requests",
        "_retries",
        "_slice",
        "_slot",
        "_start",
        "allowance",
        "floor",
        "percent",
        "requests",
        "retries",
        "window",
    )

    def __init__(self, percent: float, min_per_second: float, window: float) -> None:
        self.percent = percent
        self.allowance = percent / 100.0
        self.floor = min_per_second * window
        self.window = window
        self._slice = window / BUCKETS
        self._requests = [0] * BUCKETS
        self._retries = [0] * BUCKETS
        self._start = 0.0  # start of the current slice (monotonic seconds)
        self._end = 0.0  # and its end
        self._slot = 0
        self.requests = 0  # totals over the window
        self.retries = 0

    def _advance(self, now: float) -> int:
        """Index of ``now``'s slice, after zeroing the slices that fell out of the window."""
        if self._start <= now < self._end:
            return self._slot
        index = int(now / self._slice)
        current = int(self._start / self._slice)
        if index != current:
            for step in range(min(index - current, BUCKETS)):
                slot = (current + 1 + step) % BUCKETS
                self.requests -= self._requests[slot]
                self.retries -= self._retries[slot]
                self._requests[slot] = 0
                self._retries[slot] = 0
        self._start = index * self._slice
        self._end = self._start + self._slice
        self._slot = index % BUCKETS
        return self._slot

    def record_request(self, now: float) -> None:
        """A client request arrived (its first attempt)."""
        slot = self._advance(now)
        self._requests[slot] += 1
        self.requests += 1

    def try_retry(self, now: float) -> bool:
        """Take one retry from the budget if it has one."""
        slot = self._advance(now)
        if self.retries + 1 > self.allowance * self.requests + self.floor:
            return False
        self._retries[slot] += 1
        self.retries += 1
        return True

    def remaining(self, now: float) -> int:
        self._advance(now)
        return max(0, math.floor(self.allowance * self.requests + self.floor - self.retries))


def status_retryable(status: int, conditions: frozenset[str]) -> bool:
    """Is an upstream answer with ``status`` worth another backend?"""
    if status < 429:
        return False
    if status == 429:
        return "429" in conditions
    if status >= 500:
        return "5xx" in conditions or str(status) in conditions
    return False


def is_failure(status: int) -> bool:
    """Does this answer count against the backend's health (passive ejection)?"""
    return status >= 500
