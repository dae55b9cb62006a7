"""Choosing a backend for a request: tiers first, then the policy within the tier.

Tiers always apply: the router serves from the best (lowest) tier that has an available
backend, so a lower tier serves only while every backend of the tiers above it is
unavailable, and traffic fails back as soon as one of them is available again. A retry
skips the backends the request already tried, so it may fall through to a lower tier.

Within the tier:

- ``weighted``: smooth weighted round robin (NGINX's algorithm): over any run of requests
  each backend gets its weight's share, interleaved rather than in bursts.
- ``least-latency``: the lowest moving average of observed latency (an exponentially
  weighted moving average per response, decaying towards zero while a backend is not
  used so it gets tried again), scaled by requests in flight + 1 and divided by weight,
  so a backend that queues stops attracting traffic. Backends not measured yet go first,
  and one not chosen for ``PROBE_SECONDS`` gets the next request, so a backend that was
  slow is measured again and wins traffic back when it recovers.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Generic, Literal, Protocol, TypeVar

Policy = Literal["weighted", "least-latency"]
ALPHA = 0.2  # weight of the newest latency sample in the moving average
DECAY_SECONDS = 10.0  # an unused backend's average halves roughly every 7 s
FAILURE_PENALTY = 1.0  # seconds recorded as the latency of a failed attempt
UNMEASURED = 1e-4  # seconds assumed for a backend with no sample yet
PROBE_SECONDS = 2.0  # a backend not chosen for this long gets one request


class Candidate(Protocol):
    """What the balancer needs of a backend (deployer_router.proxy.Upstream)."""

    name: str
    weight: int
    tier: int
    current: float  # smooth round robin state
    ewma: float  # seconds
    ewma_at: float  # when ewma was last updated (monotonic)
    inflight: int

    def available(self, now: float) -> bool: ...


C = TypeVar("C", bound=Candidate)


class Balancer(Generic[C]):
    """Picks a backend among ``backends`` (fixed for the life of one manifest)."""

    __slots__ = ("_least_latency", "tiers")

    def __init__(self, backends: Sequence[C], policy: Policy) -> None:
        by_tier: dict[int, list[C]] = {}
        for backend in backends:
            by_tier.setdefault(backend.tier, []).append(backend)
        self.tiers = [by_tier[t] for t in sorted(by_tier)]
        self._least_latency = policy == "least-latency"

    def pick(self, now: float, exclude: Collection[C] = ()) -> C | None:
        """The backend for the next attempt, or None when no backend can take it."""
        for group in self.tiers:
            if self._least_latency:
                chosen = _least_latency(group, now, exclude)
            else:
                chosen = _weighted(group, now, exclude)
            if chosen is not None:
                return chosen
        return None


def _weighted(group: list[C], now: float, exclude: Collection[C]) -> C | None:
    best: C | None = None
    total = 0
    for backend in group:
        if not backend.available(now) or (exclude and backend in exclude):
            continue
        backend.current += backend.weight
        total += backend.weight
        if best is None or backend.current > best.current:
            best = backend
    if best is not None:
        best.current -= total
    return best


def _least_latency(group: list[C], now: float, exclude: Collection[C]) -> C | None:
    best: C | None = None
    best_cost = math.inf
    for backend in group:
        if not backend.available(now) or (exclude and backend in exclude):
            continue
        if backend.ewma > 0 and now - backend.ewma_at > PROBE_SECONDS:
            backend.ewma_at = now  # one probe, not a burst
            return backend
        cost = (latency_estimate(backend, now) * (backend.inflight + 1)) / backend.weight
        if cost < best_cost:
            best, best_cost = backend, cost
    return best


def latency_estimate(backend: Candidate, now: float) -> float:
    """The backend's moving-average latency, decayed by the time since its last sample."""
    if backend.ewma <= 0:
        return UNMEASURED
    idle = now - backend.ewma_at
    if idle > 1.0:
        return max(UNMEASURED, backend.ewma * math.exp(-idle / DECAY_SECONDS))
    return backend.ewma


def observe_latency(backend: Candidate, seconds: float, now: float) -> None:
    """Fold one observed latency into the backend's moving average."""
    if backend.ewma <= 0:
        backend.ewma = seconds
    else:
        backend.ewma = latency_estimate(backend, now) * (1 - ALPHA) + seconds * ALPHA
    backend.ewma_at = now
