"""Backend health: what makes a backend available, and the checks that feed it.

A backend takes traffic when every signal agrees:

- its **check** is passing: active checks (GET a health path), the cloud control plane's
  endpoint status, or synthetic predictions, whichever its manifest entry configures
  (a backend with none of them is assumed up);
- it is not **ejected**: ``consecutive_failures`` failed requests in a row (connection
  errors, timeouts, 5xx) eject it for ``base_ejection`` seconds, doubling with each
  ejection in a row up to ``max_ejection``. When the time is up it is re-admitted on
  probation (one more failure ejects it again); a backend with active checks must also
  pass them again first. A success ends probation;
- its **credentials** are ready (see auth.py), and its weight is not 0.

``available`` is called for every request, so it is two comparisons.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from deployer.router import plugins

if TYPE_CHECKING:
    from deployer.router.manifest import BackendConfig, PassiveHealth

log = logging.getLogger("deployer.router")
# Control-plane states that still serve traffic (an endpoint being updated does).
SERVING_STATES = frozenset({"healthy", "updating"})


class HealthState:
    """The health of one backend: checks, passive ejection, credentials."""

    __slots__ = (
        "checks",
        "consecutive_failures",
        "credentials_ok",
        "credentials_reason",
        "credentials_seen",
        "ejected_until",
        "ejections",
        "ejections_total",
        "needs_check",
        "passive",
        "reasons",
        "successes",
        "up",
        "weight",
    )

    def __init__(self, weight: int, passive: PassiveHealth) -> None:
        self.weight = weight
        self.passive = passive
        self.checks: dict[str, bool] = {}  # check name -> passing
        self.reasons: dict[str, str] = {}  # check name -> why it fails
        self.successes: dict[str, int] = {}  # consecutive check results, signed
        self.credentials_ok = True
        self.credentials_reason = ""
        self.credentials_seen = False  # a refresh has succeeded once
        self.consecutive_failures = 0
        self.ejections = 0  # in a row; reset by a success
        self.ejections_total = 0
        self.ejected_until = 0.0
        self.needs_check = False  # after an ejection, wait for a passing active check
        self.up = weight > 0

    # -- the hot path ----------------------------------------------------------------

    def available(self, now: float) -> bool:
        return self.up and now >= self.ejected_until

    def record_success(self) -> None:
        if self.consecutive_failures:
            self.consecutive_failures = 0
        if self.ejections:
            self.ejections = 0

    def record_failure(self, now: float) -> bool:
        """Count a failed request; True when this failure ejects the backend."""
        self.consecutive_failures += 1
        if self.consecutive_failures < self.passive.consecutive_failures:
            return False
        if now < self.ejected_until:
            return False  # already ejected (a late answer from before the ejection)
        self.ejections += 1
        self.ejections_total += 1
        pause = min(
            self.passive.base_ejection * 2 ** (self.ejections - 1), self.passive.max_ejection
        )
        self.ejected_until = now + pause
        # probation: after re-admission one more failure ejects again
        self.consecutive_failures = self.passive.consecutive_failures - 1
        if "active" in self.checks:
            self.needs_check = True
            self.successes["active"] = 0
            self._update()
        return True

    # -- checks and settings -----------------------------------------------------------

    def set_check(
        self, name: str, ok: bool, reason: str = "", threshold: tuple[int, int] = (1, 1)
    ) -> None:
        """Record one result of check ``name``; it flips after ``threshold`` =
        (healthy in a row, unhealthy in a row) results."""
        streak = self.successes.get(name, 0)
        streak = (max(streak, 0) + 1) if ok else (min(streak, 0) - 1)
        self.successes[name] = streak
        healthy, unhealthy = threshold
        current = self.checks.get(name)
        if ok and (current is None or streak >= healthy):
            self.checks[name] = True
            self.reasons.pop(name, None)
            if name == "active":
                self.needs_check = False
        elif not ok and (current is None or -streak >= unhealthy):
            self.checks[name] = False
            self.reasons[name] = reason
        elif not ok:
            self.reasons[name] = reason
        self._update()

    def set_credentials(self, ok: bool, reason: str = "") -> None:
        self.credentials_ok = ok
        self.credentials_seen = self.credentials_seen or ok
        self.credentials_reason = reason
        self._update()

    def set_weight(self, weight: int, passive: PassiveHealth) -> None:
        self.weight = weight
        self.passive = passive
        self._update()

    def _update(self) -> None:
        self.up = (
            self.weight > 0
            and self.credentials_ok
            and not self.needs_check
            and all(self.checks.values())
        )

    def reason(self, now: float) -> str:
        """Why the backend is not available (empty when it is)."""
        if self.weight <= 0:
            return "weight 0 (drained)"
        if not self.credentials_ok:
            return f"credentials not ready: {self.credentials_reason}"
        failing = [
            f"{name} check failing: {self.reasons.get(name, '')}".rstrip(": ")
            for name, ok in self.checks.items()
            if not ok
        ]
        if failing:
            return "; ".join(failing)
        if now < self.ejected_until:
            return (
                f"ejected for {self.ejected_until - now:.1f}s more after "
                f"{self.passive.consecutive_failures} consecutive failures"
            )
        if self.needs_check:
            return "ejected; waiting for a passing health check"
        return ""

    def describe(self, now: float) -> dict[str, object]:
        return {
            "available": self.available(now),
            "reason": self.reason(now),
            "checks": dict(self.checks),
            "ejections": self.ejections_total,
            "consecutive_failures": self.consecutive_failures,
        }


# A probe answers (passing, reason); passing None means "cannot tell" (the control plane
# is unreachable, say): the check keeps its last result and the reason is logged.
Probe = Callable[[], Awaitable[tuple["bool | None", str]]]


async def run_check(
    name: str,
    state: HealthState,
    probe: Probe,
    interval: Callable[[], float],
    threshold: Callable[[], tuple[int, int]] = lambda: (1, 1),
    on_change: Callable[[], None] | None = None,
    label: dict[str, str] | None = None,
) -> None:
    """Run ``probe`` every ``interval()`` seconds forever, recording results in ``state``;
    ``label`` (the backend's name and redacted URL) goes into every log line."""
    about = label or {}
    while True:
        started = time.monotonic()
        try:
            ok, reason = await probe()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a probe must never kill its loop
            ok, reason = False, f"{type(exc).__name__}: {exc}"
        if ok is None:
            log.warning(
                "health check inconclusive", extra={**about, "check": name, "reason": reason}
            )
            await asyncio.sleep(interval())
            continue
        before = state.up
        state.set_check(name, ok, reason, threshold())
        if state.up != before:
            log.warning(
                "backend health changed",
                extra={**about, "check": name, "up": state.up, "reason": reason},
            )
            if on_change is not None:
                on_change()
        elapsed = time.monotonic() - started
        await asyncio.sleep(max(0.0, interval() - elapsed))


_providers: dict[str, Any] = {}  # one provider object per backend, kept between polls


def control_plane_status(backend: BackendConfig, project: str) -> tuple[bool, str]:
    """Ask the backend's provider plugin for the endpoint's status (blocking; run it in a
    thread). Uses ``status()`` of the provider constructed for the manifest's ``target``
    options: healthy and updating endpoints serve, anything else does not."""
    key = json.dumps(
        [backend.name, backend.provider, backend.target, project], sort_keys=True, default=str
    )
    provider = _providers.get(key)
    if provider is None:
        from deployer.providers import ProjectInfo, Target

        cls = plugins.lookup(backend.provider)
        target = Target(backend.name, backend.provider, dict(backend.target))
        provider = _providers[key] = cls(target, ProjectInfo(project))
    status = provider.status()
    state = getattr(status, "state", "absent")
    if state in SERVING_STATES:
        return True, ""
    reason = getattr(status, "reason", None) or ""
    return False, f"control plane says {state}" + (f": {reason}" if reason else "")


async def control_plane_probe(
    backend: BackendConfig, project: str, timeout: float
) -> tuple[bool | None, str]:
    """``control_plane_status`` in a worker thread, bounded by ``timeout``. When the
    status cannot be had (no plugin, no credentials, the API down) the answer is
    inconclusive, and passive ejection alone decides."""
    task = asyncio.get_running_loop().run_in_executor(None, control_plane_status, backend, project)
    try:
        ok, reason = await asyncio.wait_for(task, timeout)
    except asyncio.TimeoutError:
        return None, f"control plane status took more than {timeout:g}s"
    except Exception as exc:
        return None, f"control plane status failed: {type(exc).__name__}: {exc}"
    return ok, reason
