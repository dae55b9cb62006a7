"""Reading a capture PersistentVolumeClaim from outside the cluster: a short-lived Job.

The model pods write ``capture-*.jsonl`` files into the claim (``capture.py``); nothing
outside the cluster can read a claim, so ``captured()`` creates a batch/v1 Job that mounts
it READ-ONLY at the same path and runs the live release's own image with
``python -m deployer.serving.capture_dump`` (which prints the folder's records, each line
prefixed as the stdout capture prefixes them, the newest ``MAX_BYTES`` at most: the kubelet
serves only a container's current log file). It waits for the Job (bounded: the Job's
``activeDeadlineSeconds`` plus ``WAIT_GRACE``; at once on an image that cannot be pulled,
with ``fail_fast``), reads its pod's log, and deletes the Job (Background propagation) in
every case; ``ttlSecondsAfterFinished`` removes one that could not be deleted.

The Job is the batch Job's template (``job.yaml``: the same restricted security context,
service account, pull secret and resources), one pod, ``restartPolicy: Never``,
``backoffLimit: 0``; it prefers the node of a model pod (a ReadWriteOnce claim attaches to
one node). Its pod carries no model-server labels, so no Service selects it. RBAC: patch,
get and delete on jobs; list on pods; get on pods/log.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from deployer.providers import ConfigError, DeployerError, monitoring
from deployer_kubernetes.capture import VOLUME
from deployer_kubernetes.cluster import Cluster
from deployer_kubernetes.names import LABEL_TRACK, MANAGER, Names, dns_label, label_value
from deployer_kubernetes.options import KubernetesOptions
from deployer_kubernetes.rollout import diagnose
from deployer_kubernetes.templating import render

log = logging.getLogger("deployer")

LABEL_READER = "deployer-capture-reader"
CONTAINER = "capture"
MODULE = ["python", "-m", "deployer.serving.capture_dump"]
DEADLINE_SECONDS = 300  # the Job's activeDeadlineSeconds (pulling the image included)
WAIT_GRACE = 30  # past the deadline, before deployer stops waiting for the Job controller
TTL_SECONDS = 600  # a reader Job deployer could not delete goes after this
MAX_BYTES = 8 * 1024 * 1024  # below the kubelet's default containerLogMaxSize (10 MiB)
HOSTNAME = "kubernetes.io/hostname"


@dataclass(frozen=True)
class ClaimCapture:
    """Where a live Deployment's pods capture: ``claim`` mounted at ``folder``, and the
    image they run (it has the dump command)."""

    claim: str
    folder: str
    image: str


def claim_capture(deployment: dict[str, Any]) -> ClaimCapture | None:
    """The claim the live Deployment's model container captures into (None: none)."""
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod.get("volumes") or []
        if v.get("name") == VOLUME and "persistentVolumeClaim" in v
    ]
    folders = [m["mountPath"] for m in container.get("volumeMounts") or [] if m["name"] == VOLUME]
    if not claims or not folders:
        return None
    return ClaimCapture(claims[0], folders[0], container["image"])


class ClaimReader:
    """Runs the reader Job for one target and returns what its pod printed."""

    def __init__(
        self, cluster: Cluster, names: Names, options: KubernetesOptions, target: str
    ) -> None:
        self.cluster = cluster
        self.names = names
        self.options = options
        self.target = target

    def job_name(self) -> str:
        return f"{dns_label(self.names.base, 40)}-capture-{secrets.token_hex(3)}"

    def manifest(self, where: ClaimCapture, since: datetime | None, name: str) -> dict[str, Any]:
        """The reader Job: the batch Job's template with one pod running the dump."""
        options = self.options
        pod_labels = {
            "app.kubernetes.io/name": label_value(self.names.project),
            "app.kubernetes.io/component": "capture-reader",
            "app.kubernetes.io/managed-by": MANAGER,
            LABEL_READER: name,
        }
        args = ["--folder", where.folder, "--max-bytes", str(MAX_BYTES)]
        if since is not None:
            args += ["--since", monitoring.format_time(since)]
        context = {
            "name": name,
            "namespace": self.names.namespace,
            "labels": {**pod_labels, **self.names.owner},
            "annotations": {"deployer.dev/capture-claim": where.claim},
            "shards": 1,
            "backoff_limit": 0,
            "ttl_seconds": TTL_SECONDS,
            "deadline_seconds": DEADLINE_SECONDS,
            "service_account": options.service_account,
            "image_pull_secrets": (
                [{"name": options.image_pull_secret}] if options.image_pull_secret else None
            ),
            "run_as_user": options.run_as_user,
            "image": where.image,
            "image_pull_policy": options.image_pull_policy,
            "args": args,
            "resources": options.resources.model_dump(exclude_none=True) or None,
            "volume_mounts": [{"name": VOLUME, "mountPath": where.folder, "readOnly": True}],
            "volumes": [
                {
                    "name": VOLUME,
                    "persistentVolumeClaim": {"claimName": where.claim, "readOnly": True},
                }
            ],
        }
        job = render("job.yaml", context)
        spec = job["spec"]
        del spec["completionMode"]  # one pod, not an indexed shard
        template = spec["template"]
        template["metadata"]["labels"] = pod_labels
        container = template["spec"]["containers"][0]
        container.update(name=CONTAINER, command=list(MODULE))
        model_pods = {
            "matchLabels": self.names.owner,
            "matchExpressions": [{"key": LABEL_TRACK, "operator": "Exists"}],
        }
        template["spec"]["affinity"] = {
            "podAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {"labelSelector": model_pods, "topologyKey": HOSTNAME},
                    }
                ]
            }
        }
        return job

    def read(self, where: ClaimCapture, since: datetime | None) -> str:
        """What the reader's pod printed; DeployerError naming the Job when it could not
        run (refused, failed, timed out). The Job is deleted whatever happens."""
        name = self.job_name()
        what = f"reading persistentvolumeclaim/{where.claim} with job/{name}"
        failed = False
        try:
            self.cluster.apply(self.manifest(where, since, name))
            pod = self._wait(name)
            return self.cluster.pod_log_since(pod, CONTAINER, None)
        except DeployerError as exc:
            failed = True
            cls = DeployerError if isinstance(exc, ConfigError) else type(exc)
            raise cls(f"{what}: {exc.message}", hint=exc.hint) from None
        finally:
            self._delete(name, quiet=failed)

    def _wait(self, name: str) -> str:
        """The name of the Job's pod once the Job completed."""
        timeout = DEADLINE_SECONDS + WAIT_GRACE
        deadline = time.monotonic() + timeout
        selector = f"{LABEL_READER}={name}"
        while True:
            job = self.cluster.get("Job", name)
            if job is None:
                raise DeployerError("the Job was deleted before it finished")
            conditions = {
                c["type"]: c
                for c in (job.get("status") or {}).get("conditions") or []
                if c.get("status") == "True"
            }
            if "Complete" in conditions:
                pods = self.cluster.pods(selector)
                done = [p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"]
                if not done:
                    raise DeployerError("the Job completed but its pod is gone")
                return str(done[0]["metadata"]["name"])
            if "Failed" in conditions:
                raise DeployerError(_failed(conditions["Failed"], self.cluster.pods(selector)))
            found = diagnose(self.cluster, selector)
            if found is not None and found.hard and self.options.fail_fast:
                raise DeployerError(f"its pod cannot run: {found.text}")
            if time.monotonic() >= deadline:
                why = found.text if found is not None else self._pending(selector)
                raise DeployerError(f"the Job did not finish in {timeout}s: {why}")
            time.sleep(self.options.poll_interval)

    def _pending(self, selector: str) -> str:
        """Why the pod has not run: its newest Warning event (a volume that does not attach,
        say), or its phase."""
        pods = self.cluster.pods(selector)
        if not pods:
            return "no pod was created (a quota or an admission webhook refusing it?)"
        name = pods[0]["metadata"]["name"]
        warnings = [e for e in self.cluster.events("Pod", name) if e.get("type") == "Warning"]
        if warnings:
            warnings.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
            event = warnings[-1]
            return f"pod {name}: {event.get('reason')}: {event.get('message', '')}"
        phase = (pods[0].get("status") or {}).get("phase", "Pending")
        return f"pod {name} is still {phase}"

    def _delete(self, name: str, *, quiet: bool) -> None:
        """Delete the Job (its pod in the background); a failure to do so is said, not
        raised over the answer or over the error being raised."""
        try:
            self.cluster.delete("Job", name, propagation="Background")
        except DeployerError as exc:
            if not quiet:
                log.warning(
                    "could not delete job/%s (%s); it goes %ds after it finished",
                    name,
                    exc.message,
                    TTL_SECONDS,
                )


def _failed(condition: dict[str, Any], pods: list[dict[str, Any]]) -> str:
    """``the Job failed: Reason: message; pod P: exit code C: its last lines``."""
    text = f"the Job failed: {condition.get('reason', 'Failed')}: {condition.get('message', '')}"
    for pod in pods:
        statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
        terminated = (statuses[0].get("state") or {}).get("terminated") or {}
        if terminated:
            text += f"; pod {pod['metadata']['name']}: exit code {terminated.get('exitCode')}"
            lines = [s for s in (terminated.get("message") or "").splitlines() if s.strip()]
            if lines:
                text += ": " + " ".join(lines[-3:])
            break
    return text
