"""The local canary's live signals: each model container's /metrics read on loopback,
counted from the step's first scrape, and a bake on them (no Docker: two in-process
servers stand in for the old and the new container)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_local_front import serving

from deployer.local.canary import ContainerScraper, reported, step_reader
from deployer.providers import DeployerError
from deployer.providers.live import LiveGateFailed, LiveRules, bake

METRIC = "deployer_request_duration_seconds"


class Served:
    """A /metrics endpoint whose counters grow by ``ok`` and ``errors`` each scrape."""

    def __init__(self, ok: int, errors: int) -> None:
        self.ok, self.errors, self.scrapes = ok, errors, 0

    def text(self) -> str:
        self.scrapes += 1
        lines = []
        for status, per in (("200", self.ok), ("500", self.errors)):
            count = float(per * self.scrapes)
            labels = f'route="/invocations",status="{status}"'
            lines += [
                f'{METRIC}_bucket{{{labels},le="0.01"}} {count}',
                f'{METRIC}_bucket{{{labels},le="+Inf"}} {count}',
                f"{METRIC}_count{{{labels}}} {count}",
            ]
        probes = 'route="/ping",status="200"'  # health probes are not counted
        lines += [f"{METRIC}_count{{{probes}}} 1000.0"]
        return f"# TYPE {METRIC} histogram\n" + "\n".join(lines) + "\n"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        status, body = (200, self.text().encode()) if scope["path"] == "/metrics" else (404, b"")
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def pair() -> Iterator[tuple[str, str]]:
    with serving(Served(ok=10, errors=0)) as old, serving(Served(ok=5, errors=5)) as new:
        yield old, new


def test_signals_count_from_the_steps_first_scrape(pair: tuple[str, str]) -> None:
    old_url, new_url = pair
    read = step_reader(ContainerScraper(old_url, "old"), ContainerScraper(new_url, "new"))
    old, new = read()
    assert (old.requests, old.errors) == (10, 0)  # one scrape's growth, probes left out
    assert (new.requests, new.errors) == (10, 5)


def test_a_bake_on_a_failing_container_fails_with_both_error_rates(
    pair: tuple[str, str],
) -> None:
    old_url, new_url = pair
    lines: list[str] = []
    rules = LiveRules(interval_seconds=10, min_requests=5)
    read = step_reader(ContainerScraper(old_url, "old"), ContainerScraper(new_url, "new"))
    slept: list[float] = []
    with pytest.raises(LiveGateFailed) as failed:
        bake(60, reported(read, rules, lines.append), rules, slept.append)
    assert failed.value.verdict.reason.startswith("error rate 50.00% on the new version")
    assert lines == [f"live gate: fail ({failed.value.verdict.reason})"]


def test_a_container_without_metrics_is_an_error_naming_it(pair: tuple[str, str]) -> None:
    old_url, _ = pair
    with pytest.raises(DeployerError, match="p-t-v2's /metrics answered 404"):
        ContainerScraper(old_url + "/nothing", "p-t-v2").scrape()
