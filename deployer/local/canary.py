"""Live signals of a local canary: each model container's own ``/metrics``, read directly on
its loopback port, counted from the scrape taken when the step began, and the verdicts on
the progress output (``deployer.providers.live``)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from deployer.local.loopback import client as loopback_client
from deployer.providers import DeployerError, Progress
from deployer.providers import live as gates

Reading = Callable[[], "tuple[gates.Signals | None, gates.Signals]"]


class ContainerScraper:
    """The request histogram one model container served since ``start()``."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self.baseline = gates.Histogram({}, {})

    def scrape(self) -> gates.Histogram:
        try:
            answer = loopback_client().get(self.url + "/metrics", timeout=5.0)
        except httpx.HTTPError as exc:
            raise DeployerError(f"cannot read {self.name}'s /metrics: {exc}") from None
        if answer.status_code != 200:
            raise DeployerError(f"{self.name}'s /metrics answered {answer.status_code}")
        return gates.parse_metrics([answer.text])

    def start(self) -> None:
        self.baseline = self.scrape()

    def since_start(self) -> gates.Signals:
        return self.scrape().minus(self.baseline).signals()


def step_reader(old: ContainerScraper, new: ContainerScraper) -> Reading:
    """Take the step's first scrape of both containers now; the ``read`` a bake calls."""
    old.start()
    new.start()
    return lambda: (old.since_start(), new.since_start())


def reported(read: Reading, rules: gates.LiveRules, progress: Progress) -> Reading:
    """``read``, with each comparison's verdict on the progress output."""

    def reading() -> tuple[gates.Signals | None, gates.Signals]:
        old, new = read()
        verdict = gates.compare(old, new, rules)
        progress(f"live gate: {verdict.outcome} ({verdict.reason})")
        return old, new

    return reading
