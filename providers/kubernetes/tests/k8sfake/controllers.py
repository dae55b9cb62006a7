"""What kube-controller-manager, the scheduler and the kubelet would do, simulated on a tick:
Deployments roll out (pods per template hash, status, Progressing/Available conditions and
the progress deadline), the HPA keeps replicas within bounds, PDBs count healthy pods.

A test scripts failures per image: ``Failure("ImagePullBackOff")``, ``CrashLoopBackOff``
(with log lines), ``Unschedulable``, or ``Pending`` (stuck in ContainerCreating).
"""

from __future__ import annotations

import copy
import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from k8sfake.jobs import JobController
from k8sfake.resources import CORE, GROUPS
from k8sfake.selectors import selector_matches
from k8sfake.store import Store, now, template_hash

SERVICES, PODS, EVENTS = CORE[1], CORE[2], CORE[3]
DEPLOYMENTS, HPAS, PDBS = GROUPS[0], GROUPS[1], GROUPS[2]


class Runtime(Protocol):
    """Runs the containers of ready pods and answers the service proxy."""

    def ready(self, image: str, pod: dict[str, Any]) -> bool: ...

    def request(
        self,
        image: str,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        pod: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]: ...

    def close(self) -> None: ...


@dataclass
class Failure:
    """How pods of a matching image fail."""

    reason: str  # ImagePullBackOff | CrashLoopBackOff | Unschedulable | Pending
    message: str = ""
    logs: list[str] = field(default_factory=list)
    exit_code: int = 3


@dataclass
class PodState:
    deployment_uid: str
    template_hash: str
    image: str
    born: float
    failure: Failure | None
    events_sent: bool = False


_counter = itertools.count(1)


class Controllers:
    """Advances every Deployment, HPA and PDB once per ``tick()``."""

    def __init__(self, store: Store, runtime: Runtime) -> None:
        self.store = store
        self.runtime = runtime
        self.failures: dict[str, Failure] = {}  # image substring -> failure
        self.pods: dict[tuple[str, str], PodState] = {}  # (namespace, name)
        self.progress: dict[str, tuple[str, float]] = {}  # deployment uid -> (hash, time)
        self.start_delay = 0.05
        self.logs: dict[tuple[str, str], list[str]] = {}
        self.jobs = JobController(store, runtime, self.logs)

    def failure_for(self, image: str) -> Failure | None:
        for pattern, failure in self.failures.items():
            if pattern in image:
                return failure
        return None

    # -- the loop -----------------------------------------------------------------------

    def tick(self) -> None:
        with self.store.lock:
            for hpa in list(self.store.items(HPAS)):
                self._hpa(hpa)
            for deployment in list(self.store.items(DEPLOYMENTS)):
                self._deployment(deployment)
            self._collect_orphans()
            for pdb in list(self.store.items(PDBS)):
                self._pdb(pdb)
            self.jobs.tick()

    # -- deployments --------------------------------------------------------------------

    def _owned_pods(self, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        uid = deployment["metadata"]["uid"]
        namespace = deployment["metadata"]["namespace"]
        return [
            pod
            for pod in self.store.items(PODS, namespace)
            if self.pods.get((namespace, pod["metadata"]["name"]), None) is not None
            and self.pods[(namespace, pod["metadata"]["name"])].deployment_uid == uid
        ]

    def _deployment(self, deployment: dict[str, Any]) -> None:
        meta, spec = deployment["metadata"], deployment["spec"]
        namespace, uid = meta["namespace"], meta["uid"]
        desired = spec.get("replicas", 1)
        template = spec["template"]
        hash_ = template_hash(template)
        last_hash, last_progress = self.progress.get(uid, ("", time.monotonic()))
        if last_hash != hash_:
            last_progress = time.monotonic()
        pods = self._owned_pods(deployment)
        new = [
            p for p in pods if self.pods[(namespace, p["metadata"]["name"])].template_hash == hash_
        ]
        old = [p for p in pods if p not in new]
        for pod in new:
            if self._advance_pod(pod):
                last_progress = time.monotonic()
        if len(new) < desired:
            for _ in range(desired - len(new)):
                new.append(self._create_pod(deployment, hash_))
            last_progress = time.monotonic()
        elif len(new) > desired:
            extra = sorted(new, key=lambda p: _ready(p))[: len(new) - desired]
            for pod in extra:
                self._delete_pod(pod)
                new.remove(pod)
        ready_new = sum(1 for p in new if _ready(p))
        if ready_new >= desired and old:
            for pod in old:
                self._delete_pod(pod)
            old = []
            last_progress = time.monotonic()
        self.progress[uid] = (hash_, last_progress)
        self._deployment_status(deployment, new, old, desired, hash_, last_progress)

    def _deployment_status(
        self,
        deployment: dict[str, Any],
        new: list[dict[str, Any]],
        old: list[dict[str, Any]],
        desired: int,
        hash_: str,
        last_progress: float,
    ) -> None:
        spec = deployment["spec"]
        ready = sum(1 for p in new + old if _ready(p))
        updated = len(new)
        total = len(new) + len(old)
        status: dict[str, Any] = {"observedGeneration": deployment["metadata"]["generation"]}
        for key, value in (
            ("replicas", total),
            ("updatedReplicas", updated),
            ("readyReplicas", ready),
            ("availableReplicas", ready),
            ("unavailableReplicas", max(desired - ready, 0)),
        ):
            if value:
                status[key] = value  # zero counts are omitted, as the real API omits them
        old_conditions = {c["type"]: c for c in deployment.get("status", {}).get("conditions", [])}
        rs = f"{deployment['metadata']['name']}-{hash_}"
        complete = updated == desired and ready >= desired and not old
        if complete:
            progressing = (
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs}" has successfully progressed.',
            )
        elif time.monotonic() - last_progress > spec.get("progressDeadlineSeconds", 600):
            progressing = (
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs}" has timed out progressing.',
            )
        else:
            progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs}" is progressing.')
        available = (
            ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
            if ready >= desired
            else (
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        )
        status["conditions"] = [
            _condition(old_conditions.get("Available"), "Available", *available),
            _condition(old_conditions.get("Progressing"), "Progressing", *progressing),
        ]
        if status != deployment.get("status"):
            updated_obj = copy.deepcopy(deployment)
            updated_obj["status"] = status
            self.store.put(DEPLOYMENTS, updated_obj)

    # -- pods ---------------------------------------------------------------------------

    def _create_pod(self, deployment: dict[str, Any], hash_: str) -> dict[str, Any]:
        meta = deployment["metadata"]
        template = copy.deepcopy(deployment["spec"]["template"])
        name = f"{meta['name']}-{hash_}-{uuid.uuid4().hex[:5]}"
        labels = {**(template.get("metadata", {}).get("labels") or {}), "pod-template-hash": hash_}
        spec = template["spec"]
        image = spec["containers"][0]["image"]
        failure = self.failure_for(image)
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": labels,
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": f"{meta['name']}-{hash_}",
                        "uid": str(uuid.uuid5(uuid.NAMESPACE_OID, meta["uid"] + hash_)),
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
            "status": {
                "phase": "Pending",
                "qosClass": "Burstable",
                "conditions": [
                    _pod_condition(
                        "PodScheduled",
                        "False" if failure and failure.reason == "Unschedulable" else "True",
                        "Unschedulable" if failure and failure.reason == "Unschedulable" else None,
                        failure.message if failure and failure.reason == "Unschedulable" else None,
                    )
                ],
            },
        }
        if not (failure and failure.reason == "Unschedulable"):
            spec["nodeName"] = "fake-node-1"
        self.pods[(meta["namespace"], name)] = PodState(
            meta["uid"], hash_, image, time.monotonic(), failure
        )
        self.store.put(PODS, pod)
        return pod

    def _delete_pod(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        self.pods.pop((meta["namespace"], meta["name"]), None)
        self.store.remove(PODS, meta["namespace"], meta["name"])

    def _advance_pod(self, pod: dict[str, Any]) -> bool:
        """Move one pod along (scheduled, pulling, running, ready). True on progress."""
        meta = pod["metadata"]
        state = self.pods[(meta["namespace"], meta["name"])]
        if time.monotonic() - state.born < self.start_delay:
            return False
        container = pod["spec"]["containers"][0]
        failure = state.failure
        status = copy.deepcopy(pod["status"])
        if failure is not None:
            self._fail_pod(pod, state, failure, status, container)
            if status != pod["status"]:
                self.store.put(PODS, {**pod, "status": status})
            return False
        ready = self.runtime.ready(state.image, pod)
        was_ready = _ready(pod)
        status.update(
            {
                "phase": "Running",
                "hostIP": "10.0.0.1",
                "podIP": f"10.244.0.{next(_counter) % 250 + 1}"
                if "podIP" not in status
                else status["podIP"],
                "startTime": status.get("startTime") or now(),
                "conditions": [
                    _pod_condition("PodScheduled", "True"),
                    _pod_condition("Initialized", "True"),
                    _pod_condition("ContainersReady", "True" if ready else "False"),
                    _pod_condition("Ready", "True" if ready else "False"),
                ],
                "containerStatuses": [
                    _container_status(
                        container,
                        {"running": {"startedAt": status.get("startTime") or now()}},
                        ready=ready,
                        started=ready,
                    )
                ],
            }
        )
        if status != pod["status"]:
            self.store.put(PODS, {**pod, "status": status})
        return ready and not was_ready

    def _fail_pod(
        self,
        pod: dict[str, Any],
        state: PodState,
        failure: Failure,
        status: dict[str, Any],
        container: dict[str, Any],
    ) -> None:
        meta = pod["metadata"]
        image = container["image"]
        if failure.reason == "Unschedulable":
            message = failure.message or "0/3 nodes are available: 3 Insufficient cpu."
            status["conditions"] = [
                _pod_condition("PodScheduled", "False", "Unschedulable", message)
            ]
            self._event(pod, "FailedScheduling", message, "default-scheduler", state)
            return
        base_conditions = [
            _pod_condition("PodScheduled", "True"),
            _pod_condition("Initialized", "True"),
            _pod_condition(
                "ContainersReady",
                "False",
                "ContainersNotReady",
                "containers with unready status: [model]",
            ),
            _pod_condition(
                "Ready", "False", "ContainersNotReady", "containers with unready status: [model]"
            ),
        ]
        status["conditions"] = base_conditions
        status["startTime"] = status.get("startTime") or now()
        if failure.reason == "ImagePullBackOff":
            message = failure.message or (
                f'failed to pull and unpack image "{image}": failed to resolve reference '
                f'"{image}": {image}: not found'
            )
            status["containerStatuses"] = [
                _container_status(
                    container,
                    {
                        "waiting": {
                            "reason": "ImagePullBackOff",
                            "message": f'Back-off pulling image "{image}"',
                        }
                    },
                    image_id="",
                )
            ]
            self._event(
                pod,
                "Failed",
                f'Failed to pull image "{image}": rpc error: code = NotFound desc = {message}',
                "kubelet",
                state,
            )
        elif failure.reason == "CrashLoopBackOff":
            status["phase"] = "Running"
            self.logs[(meta["namespace"], meta["name"])] = failure.logs
            status["containerStatuses"] = [
                _container_status(
                    container,
                    {
                        "waiting": {
                            "reason": "CrashLoopBackOff",
                            "message": f"back-off 10s restarting failed container=model "
                            f"pod={meta['name']}_{meta['namespace']}",
                        }
                    },
                    restarts=3,
                    last={
                        "terminated": {
                            "exitCode": failure.exit_code,
                            "reason": "Error",
                            "startedAt": now(),
                            "finishedAt": now(),
                            "containerID": "containerd://" + "0" * 64,
                        }
                    },
                )
            ]
            self._event(
                pod,
                "BackOff",
                f"Back-off restarting failed container model in pod "
                f"{meta['name']}_{meta['namespace']}({meta.get('uid', '')})",
                "kubelet",
                state,
            )
        else:  # Pending: stuck creating the container
            status["containerStatuses"] = [
                _container_status(
                    container, {"waiting": {"reason": "ContainerCreating"}}, image_id=""
                )
            ]

    def _event(
        self, pod: dict[str, Any], reason: str, message: str, component: str, state: PodState
    ) -> None:
        if state.events_sent:
            return
        state.events_sent = True
        meta = pod["metadata"]
        stamp = now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid", ""),
                "fieldPath": "spec.containers{model}",
            },
            "reason": reason,
            "message": message,
            "type": "Warning",
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": "",
        }
        self.store.put(EVENTS, event)

    def _collect_orphans(self) -> None:
        """Garbage-collect pods whose Deployment is gone."""
        uids = {d["metadata"]["uid"] for d in self.store.items(DEPLOYMENTS)}
        for (namespace, name), state in list(self.pods.items()):
            if state.deployment_uid not in uids:
                self.pods.pop((namespace, name), None)
                self.store.remove(PODS, namespace, name)

    # -- autoscaling and disruption budgets -------------------------------------------

    def _hpa(self, hpa: dict[str, Any]) -> None:
        spec, meta = hpa["spec"], hpa["metadata"]
        target = spec["scaleTargetRef"]["name"]
        deployment = next(
            (
                d
                for d in self.store.items(DEPLOYMENTS, meta["namespace"])
                if d["metadata"]["name"] == target
            ),
            None,
        )
        if deployment is None:
            return
        current = deployment["spec"].get("replicas", 1)
        desired = min(max(current, spec.get("minReplicas", 1)), spec["maxReplicas"])
        if desired != current:
            scaled = copy.deepcopy(deployment)
            scaled["spec"]["replicas"] = desired
            self.store.put(DEPLOYMENTS, scaled, manager="kube-controller-manager")
        status = {
            "currentReplicas": deployment.get("status", {}).get("replicas", 0),
            "desiredReplicas": desired,
            "observedGeneration": meta["generation"],
        }
        if status != hpa.get("status"):
            self.store.put(HPAS, {**hpa, "status": status})

    def _pdb(self, pdb: dict[str, Any]) -> None:
        spec, meta = pdb["spec"], pdb["metadata"]
        pods = [
            p
            for p in self.store.items(PODS, meta["namespace"])
            if selector_matches(spec.get("selector"), p["metadata"].get("labels") or {})
        ]
        healthy = sum(1 for p in pods if _ready(p))
        expected = len(pods)
        if "minAvailable" in spec:
            desired = _resolve(spec["minAvailable"], expected)
        else:
            desired = max(expected - _resolve(spec.get("maxUnavailable", 1), expected), 0)
        status = {
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "disruptionsAllowed": max(healthy - desired, 0),
            "expectedPods": expected,
            "observedGeneration": meta["generation"],
        }
        if status != pdb.get("status"):
            self.store.put(PDBS, {**pdb, "status": status})

    # -- the service proxy's endpoints ----------------------------------------------

    def endpoints(self, service: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
        """Ready pods the Service selects, with their image."""
        selector = service["spec"].get("selector")
        result = []
        for pod in self.store.items(PODS, service["metadata"]["namespace"]):
            if _ready(pod) and selector_matches(selector, pod["metadata"].get("labels") or {}):
                result.append((pod, pod["spec"]["containers"][0]["image"]))
        return result


def _resolve(value: Any, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return -(-int(value[:-1]) * total // 100)
    return int(value)


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in pod.get("status", {}).get("conditions", [])
    )


def _condition(
    old: dict[str, Any] | None, type_: str, status: str, reason: str, message: str
) -> dict[str, Any]:
    stamp = now()
    transition = old["lastTransitionTime"] if old and old["status"] == status else stamp
    same = old and old["status"] == status and old["reason"] == reason
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": old["lastUpdateTime"] if same and old else stamp,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    }


def _pod_condition(
    type_: str, status: str, reason: str | None = None, message: str | None = None
) -> dict[str, Any]:
    condition: dict[str, Any] = {
        "type": type_,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": now(),
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _container_status(
    container: dict[str, Any],
    state: dict[str, Any],
    *,
    ready: bool = False,
    started: bool = False,
    restarts: int = 0,
    last: dict[str, Any] | None = None,
    image_id: str | None = None,
) -> dict[str, Any]:
    image = container["image"]
    return {
        "name": container["name"],
        "image": image,
        "imageID": image_id if image_id is not None else f"{image.split('@')[0]}@sha256:{'0' * 64}",
        "ready": ready,
        "started": started,
        "restartCount": restarts,
        "state": state,
        "lastState": last or {},
        **({"containerID": "containerd://" + uuid.uuid4().hex * 2} if "running" in state else {}),
    }
