"""Helpers shared by the kubernetes provider's tests (fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from deployer.image.build import Image
from deployer.providers import Release

# make_provider(target="k8s", project="iris", **options) -> KubernetesProvider
ProviderFactory = Callable[..., Any]

SAMPLE = [[0, 0, 0, 0], [0, 0, 0, 0]]
ADMIN_TOKEN = "admin-token-for-tests"
VERSIONS = ["1.29", "1.30", "1.31", "1.32", "1.33"]


def release(n: int | str, project: str = "iris") -> Release:
    """A release whose version is derived from ``n`` (no image is built)."""
    digest = hashlib.sha256(str(n).encode()).hexdigest()
    image = Image(f"{project}:{n}", f"sha256:{digest}", 1, {"dev.deployer.model.sha256": digest})
    return Release(project, image, SAMPLE, {})


def image_ref(n: int | str) -> str:
    return f"registry.test/iris@sha256:{hashlib.sha256(f'img{n}'.encode()).hexdigest()}"


def collect(lines: list[str]) -> Callable[[str], None]:
    return lines.append


def quiet(_message: str) -> None:
    pass


class PollClock:
    """Stands in for ``time`` in the provider's modules. Each sleep really sleeps (at most
    ``real`` seconds, so the fake's controllers move on) and, while the clock runs, moves
    the virtual time by the full amount: a deadline is then counted in polls, not in how
    busy the machine is. A stopped clock (``running=False``) lets a phase take as many
    polls as it needs until ``start()``; ``limit`` polls in all catch a wait that never ends.
    """

    def __init__(self, *, running: bool = True, real: float = 0.05, limit: int = 4000) -> None:
        self.now = 0.0
        self.running = running
        self.real = real
        self.polls = 0
        self.limit = limit

    def start(self) -> None:
        self.running = True

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, "a poll loop that does not sleep spins"
        self.polls += 1
        assert self.polls < self.limit, "still polling: the timeout was ignored"
        time.sleep(min(seconds, self.real))
        if self.running:
            self.now += seconds
