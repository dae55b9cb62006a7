"""Live signals of a canary step: the model server's ``/metrics`` of each pod of the old and
the new version, read through the API server's pod proxy, summed per version and counted
from the scrape taken when the step began (``deployer.providers.live``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from deployer.providers import DeployerError, Progress, routes
from deployer.providers import live as gates
from deployer_kubernetes.cluster import Cluster

EMPTY = gates.Histogram({}, {})


def total(histograms: Iterable[gates.Histogram]) -> gates.Histogram:
    """The sum of several pods' histograms."""
    counts: dict[str, float] = {}
    buckets: dict[float, float] = {}
    for histogram in histograms:
        for status, value in histogram.counts.items():
            counts[status] = counts.get(status, 0.0) + value
        for bound, value in histogram.buckets.items():
            buckets[bound] = buckets.get(bound, 0.0) + value
    return gates.Histogram(counts, buckets)


class PodScraper:
    """Reads the ``/metrics`` of the pods one label selector picks, per pod, and what they
    served since the first scrape (a pod that came later counts from zero)."""

    def __init__(
        self, cluster: Cluster, selector: str, progress: Progress, port: int = routes.DEFAULT_PORT
    ) -> None:
        self.cluster = cluster
        self.selector = selector
        self.progress = progress
        self.port = port
        self.baseline: dict[str, gates.Histogram] = {}
        self.unreachable: set[str] = set()

    def scrape(self) -> dict[str, gates.Histogram]:
        """Each running pod's histogram now (a pod out of reach is left out, said once)."""
        found: dict[str, gates.Histogram] = {}
        for pod in self.cluster.pods(self.selector):
            name = pod["metadata"]["name"]
            if (pod.get("status") or {}).get("phase") != "Running":
                continue
            try:
                found[name] = gates.parse_metrics(
                    [self.cluster.pod_get(name, self.port, "metrics")]
                )
            except (DeployerError, ValueError) as exc:
                if name not in self.unreachable:
                    self.unreachable.add(name)
                    self.progress(f"live gate: cannot read pod/{name}'s /metrics: {exc}")
        return found

    def start(self) -> None:
        self.baseline = self.scrape()

    def since_start(self) -> gates.Histogram:
        now = self.scrape()
        return total(h.minus(self.baseline.get(pod, EMPTY)) for pod, h in now.items())


def step_reader(
    old: PodScraper, new: PodScraper
) -> Callable[[], tuple[gates.Signals | None, gates.Signals]]:
    """Take the step's first scrape of both versions now; return the ``read`` a bake calls."""
    old.start()
    new.start()

    def read() -> tuple[gates.Signals | None, gates.Signals]:
        return old.since_start().signals(), new.since_start().signals()

    return read
