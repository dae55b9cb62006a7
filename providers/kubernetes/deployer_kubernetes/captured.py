"""Reading back what the pods captured, from wherever the live Deployment captures:

- stdout: each model-server pod's log (CoreV1 ``read_namespaced_pod_log`` with
  ``since_seconds``). Logs of deleted pods, and of a container before its last restart,
  are gone: keep them with a log collector if drift needs them;
- a PersistentVolumeClaim: the ``capture-*.jsonl`` files, printed by a short-lived Job
  that mounts the claim read-only and runs the release's image (``capture_job.py``), read
  from that pod's log; only files written since ``since`` (minus a slack), and their
  newest ``capture_job.MAX_BYTES`` at most (what is left out is counted in
  ``CaptureReader.left_out_bytes`` and logged).

Either way the lines prefixed with ``CAPTURE_STDOUT_PREFIX`` are decoded into
``CapturedRecord``s by ``parse``; a line that does not decode is skipped and counted
(``CaptureReader.skipped``).
"""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime, timezone
from typing import Any

from deployer.providers import UsageError, monitoring
from deployer_kubernetes.capture import of_live
from deployer_kubernetes.capture_job import ClaimCapture, ClaimReader, claim_capture
from deployer_kubernetes.cluster import Cluster
from deployer_kubernetes.names import LABEL_TRACK, Names
from deployer_kubernetes.options import KubernetesOptions

log = logging.getLogger("deployer")

CONTAINER = "model"
SLACK_SECONDS = 5  # the kubelet's clock and ours may differ a little: ask a bit more


class CaptureReader:
    """Captured records of one target's model-server pods (every track)."""

    def __init__(
        self, cluster: Cluster, names: Names, options: KubernetesOptions, target: str
    ) -> None:
        self.cluster = cluster
        self.names = names
        self.options = options
        self.target = target
        self.skipped = 0
        self.left_out_bytes = 0  # of a claim's files, past capture_job.MAX_BYTES

    def records(self, since: datetime | None = None) -> list[monitoring.CapturedRecord]:
        """Records at or after ``since`` (None: all the logs or the claim hold), oldest
        first; UsageError when nothing is deployed or captured, DeployerError naming the
        reader Job when a claim could not be read."""
        where = self._check()
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)  # naive means UTC, as parse_time says
        if where is not None:
            reader = ClaimReader(self.cluster, self.names, self.options, self.target)
            text = reader.read(where, since)
            found = self.parse(text)
            self._left_out(text, where.claim)
        else:
            found = self._from_pods(since)
        if since is not None:
            found = [r for r in found if r.time >= since]
        return sorted(found, key=lambda r: r.time)

    def _from_pods(self, since: datetime | None) -> list[monitoring.CapturedRecord]:
        since_seconds = None
        if since is not None:
            age = (datetime.now(timezone.utc) - since).total_seconds()
            since_seconds = max(1, math.ceil(age) + SLACK_SECONDS)
        found: list[monitoring.CapturedRecord] = []
        for pod in self.cluster.pods(self.names.owner_selector):
            if LABEL_TRACK not in (pod["metadata"].get("labels") or {}):
                continue  # not a model server (a batch Job's pod)
            text = self.cluster.pod_log_since(pod["metadata"]["name"], CONTAINER, since_seconds)
            found.extend(self.parse(text))
        return found

    def _left_out(self, text: str, claim: str) -> None:
        """The dump's ``{"event": "truncated"}`` line: counted and said."""
        limit = 0
        for line in text.splitlines():
            if not line.startswith("{"):
                continue
            try:
                data = json.loads(line)
                if isinstance(data, dict) and data.get("event") == "truncated":
                    self.left_out_bytes += int(data.get("bytes_left_out", 0))
                    limit = int(data.get("max_bytes", 0))
            except (ValueError, TypeError):
                continue
        if self.left_out_bytes:
            log.warning(
                "%s: only the newest %.3g MB of persistentvolumeclaim/%s's capture files were "
                "read (%d bytes older were left out): ask for less with --since",
                self.target,
                limit / (1024 * 1024),
                claim,
                self.left_out_bytes,
            )

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

    def _check(self) -> ClaimCapture | None:
        """The claim the live Deployment captures into (None: stdout); UsageError when
        nothing is deployed or captured."""
        deployment = self.cluster.get("Deployment", self.names.deployment())
        if deployment is None:
            raise UsageError(f"{self.target} has nothing deployed: nothing was captured")
        spec = of_live(deployment)
        if spec is None:
            raise UsageError(
                f"{self.target} captures nothing: set monitoring.capture in deployer.yaml "
                f"and push --to {self.target}"
            )
        if not spec.destination:
            return None
        where = claim_capture(deployment)
        if where is None:
            raise UsageError(
                f"{self.target} captures to {spec.destination} in the pods, but its "
                "Deployment mounts no capture PersistentVolumeClaim: push again"
            )
        return where
