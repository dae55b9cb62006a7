"""Reading back what the pods captured: each model-server pod's log (CoreV1
``read_namespaced_pod_log`` with ``since_seconds``), the lines prefixed with
``CAPTURE_STDOUT_PREFIX`` decoded into ``CapturedRecord``s; a line that does not decode is
skipped and counted (``CaptureReader.skipped``). Logs of deleted pods, and of a container
before its last restart, are gone: keep them with a log collector if drift needs them.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

from deployer.providers import UsageError, monitoring
from deployer_kubernetes.capture import of_live
from deployer_kubernetes.cluster import Cluster
from deployer_kubernetes.names import LABEL_TRACK, Names

CONTAINER = "model"
SLACK_SECONDS = 5  # the kubelet's clock and ours may differ a little: ask a bit more


class CaptureReader:
    """Captured records of one target's model-server pods (every track)."""

    def __init__(self, cluster: Cluster, names: Names, target: str) -> None:
        self.cluster = cluster
        self.names = names
        self.target = target
        self.skipped = 0

    def records(self, since: datetime | None = None) -> list[monitoring.CapturedRecord]:
        """Records at or after ``since`` (None: all the logs hold), oldest first."""
        self._check()
        since_seconds = None
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)  # naive means UTC, as parse_time says
        if since is not None:
            age = (datetime.now(timezone.utc) - since).total_seconds()
            since_seconds = max(1, math.ceil(age) + SLACK_SECONDS)
        found: list[monitoring.CapturedRecord] = []
        for pod in self.cluster.pods(self.names.owner_selector):
            if LABEL_TRACK not in (pod["metadata"].get("labels") or {}):
                continue  # not a model server (a batch Job's pod)
            text = self.cluster.pod_log_since(pod["metadata"]["name"], CONTAINER, since_seconds)
            found.extend(self.parse(text))
        if since is not None:
            found = [r for r in found if r.time >= since]
        return sorted(found, key=lambda r: r.time)

    def parse(self, text: str) -> list[monitoring.CapturedRecord]:
        """The capture lines of one log; other lines ignored, bad capture lines counted."""
        records = []
        prefix = monitoring.CAPTURE_STDOUT_PREFIX
        for line in text.splitlines():
            if not line.startswith(prefix):
                continue
            try:
                data: Any = json.loads(line[len(prefix) :])
                if not isinstance(data, dict):
                    raise ValueError("expected an object")
                records.append(monitoring.CapturedRecord.from_json(data))
            except ValueError:
                self.skipped += 1
        return records

    def _check(self) -> None:
        deployment = self.cluster.get("Deployment", self.names.deployment())
        if deployment is None:
            raise UsageError(f"{self.target} has nothing deployed: nothing was captured")
        spec = of_live(deployment)
        if spec is None:
            raise UsageError(
                f"{self.target} captures nothing: set monitoring.capture in deployer.yaml "
                f"and push --to {self.target}"
            )
        if spec.destination:
            raise UsageError(
                f"{self.target} captures to a PersistentVolumeClaim ({spec.destination} in "
                "the pods), which deployer cannot read from outside the cluster: read the "
                "capture-*.jsonl files where the claim lives, or capture to stdout (remove "
                f"targets.{self.target}.capture_pvc) for deployer drift"
            )
