"""Per-backend request timeouts and body limits, grouped the way HTTP proxies can apply them.

The built-in router decides per request and per backend: a body over a backend's
``max_body_mb`` goes to another backend (413 when none takes it), each attempt is bounded
by the backend's own ``timeout``. A proxy configuration cannot test each server, so the
renderers route by **body class** instead: the distinct effective limits
``t1 < t2 < ... < tk`` (a backend's ``max_body_mb``, capped by ``limits.body_mb``) cut
body sizes into classes ``(t[i-1], t[i]]``; class ``i`` holds every backend whose limit is
at least ``t[i]``, so a body only ever reaches a backend that takes it, and a body over
``tk`` is answered 413 at the front. Timeouts are per group of servers in every engine
(HAProxy backend section, NGINX location, Envoy route), never per server: a group waits
as long as its slowest member may take (the longest own ``timeout``), so no backend is cut
short, and a member with a shorter own timeout is waited on that long too (noted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deployer.router.manifest import BackendConfig, Manifest
from deployer_router.render import Endpoint, seconds


@dataclass(frozen=True)
class BodyClass:
    """Bodies of ``above`` < size <= ``limit`` bytes, and the backends that take them all."""

    index: int
    above: int  # -1 for the first class (it also takes requests without a body)
    limit: int
    endpoints: tuple[Endpoint, ...]

    @property
    def first(self) -> bool:
        return self.above < 0


def body_limit(config: BackendConfig, manifest: Manifest) -> int:
    """The largest body (bytes) ``config`` may receive: its own limit under the router's."""
    own = config.body_bytes
    router = manifest.limits.body_bytes
    return router if own is None else min(own, router)


def request_timeout(config: BackendConfig, manifest: Manifest) -> float:
    """Seconds one attempt on ``config`` may take: its own ``timeout``, else the router's."""
    return config.timeout if config.timeout is not None else manifest.timeouts.request


def body_classes(manifest: Manifest, endpoints: Sequence[Endpoint]) -> list[BodyClass]:
    """The body classes, smallest bodies first (one class when every limit is the same)."""
    limits = sorted({body_limit(e.config, manifest) for e in endpoints})
    classes: list[BodyClass] = []
    above = -1
    for index, limit in enumerate(limits):
        members = tuple(e for e in endpoints if body_limit(e.config, manifest) >= limit)
        classes.append(BodyClass(index, above, limit, members))
        above = limit
    return classes


def longest_timeout(manifest: Manifest, endpoints: Sequence[Endpoint]) -> float:
    """The per-attempt timeout a group of servers gets: the longest of its members'."""
    return max(request_timeout(e.config, manifest) for e in endpoints)


def total_timeout(manifest: Manifest, endpoints: Sequence[Endpoint]) -> float:
    """``timeouts.total``, stretched to the group's longest attempt (as the router does)."""
    return max(manifest.timeouts.total, longest_timeout(manifest, endpoints))


def timeout_note(manifest: Manifest, endpoints: Sequence[Endpoint], which: str) -> str | None:
    """A note when ``which`` (one group of servers with one timeout) holds backends of
    different own timeouts: they all get the longest."""
    own = {e.name: request_timeout(e.config, manifest) for e in endpoints}
    longest = max(own.values())
    shorter = [f"{name} ({seconds(value)})" for name, value in own.items() if value < longest]
    if not shorter:
        return None
    return (
        f"timeouts: {which} waits {seconds(longest)} (its longest backend timeout) for every"
        f" member: {', '.join(shorter)} get that long too (the built-in router times each"
        " backend on its own)"
    )


def class_notes(manifest: Manifest, classes: Sequence[BodyClass], group: str) -> list[str]:
    """What the rendering cannot say per server when ``group`` (e.g. "backend section")
    carries one timeout per body class, and how the backends are grouped by body size."""
    notes: list[str] = []
    for body in classes:
        which = f"one {group}"
        if len(classes) > 1:
            which = f"the {group} for bodies up to {describe(body.limit)}"
        note = timeout_note(manifest, body.endpoints, which)
        if note is not None:
            notes.append(note)
    if len(classes) > 1:
        notes.append(grouping_note(classes))
    return notes


def grouping_note(classes: Sequence[BodyClass]) -> str:
    sizes = "; ".join(
        f"up to {describe(c.limit)}: {', '.join(e.name for e in c.endpoints)}" for c in classes
    )
    return (
        f"body limits: backends are grouped by the bodies they take ({sizes}); a larger body"
        " is answered 413; a backend in several groups is health-checked and ejected in each"
        " on its own"
    )


def describe(limit: int) -> str:
    """A byte count as a short text: '1.5 MB (1572864 bytes)'."""
    return f"{limit / (1024 * 1024):g} MB ({limit} bytes)"
