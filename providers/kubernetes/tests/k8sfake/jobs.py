"""The Job controller and a kubelet for its pods: what kube-controller-manager's job
controller and the kubelet do for a batch/v1 Job, on the fake's tick.

Indexed Jobs (and NonIndexed ones, as indexes nobody reads): pods per index up to
``parallelism``, each with ``JOB_COMPLETION_INDEX`` (from the index annotation, by the
downward API) and the labels the real controller adds; a failed pod counts against
``backoffLimit`` and its index is retried; ``activeDeadlineSeconds``; conditions
Complete / Failed (BackoffLimitExceeded, DeadlineExceeded); ``ttlSecondsAfterFinished``;
pods of a deleted Job stopped and removed (the garbage collector).

Each pod RUNS: the runtime's ``run_pod`` (the real container for ``DockerRuntime``) with
``$(VAR)`` expanded in command and args, and each volume a host folder: ``hostPath`` as
is, a PVC the folder a test gave with ``FakeKube.add_claim``, an ``emptyDir`` a fresh
temporary folder. A container that fails gets its log's tail as its termination message
when ``terminationMessagePolicy`` is ``FallbackToLogsOnError``.
"""

from __future__ import annotations

import copy
import re
import shutil
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from k8sfake.resources import CORE, GROUPS
from k8sfake.store import Store, now

PODS = CORE[2]
JOBS = next(r for r in GROUPS if r.plural == "jobs")
INDEX = "batch.kubernetes.io/job-completion-index"
TERMINATION_LINES, TERMINATION_BYTES = 80, 2048


class JobRuntime(Protocol):
    def run_pod(
        self,
        name: str,
        image: str,
        argv: list[str],
        env: dict[str, str],
        mounts: list[tuple[str, str, bool]],
        user: str,
    ) -> tuple[int, str]:
        """Run one container to its end: (exit code, its output)."""
        ...

    def stop_pod(self, name: str) -> None: ...


@dataclass
class Run:
    thread: threading.Thread
    temporary: list[str] = field(default_factory=list)
    result: tuple[int, str] | None = None


class JobController:
    """Advances every Job once per ``tick`` (called with the store's lock held)."""

    def __init__(self, store: Store, runtime: Any, logs: dict[tuple[str, str], list[str]]) -> None:
        self.store = store
        self.runtime = runtime
        self.logs = logs  # the fake's pod logs: (namespace, pod) -> lines
        self.claims: dict[str, str] = {}  # PVC name -> host folder
        self.runs: dict[tuple[str, str], Run] = {}
        self.lock = threading.Lock()

    # -- the loop -----------------------------------------------------------------------

    def tick(self) -> None:
        jobs = {j["metadata"]["uid"]: j for j in self.store.items(JOBS)}
        for job in jobs.values():
            self._job(job)
        for pod in self.store.items(PODS):  # the garbage collector: pods of deleted Jobs
            uid = (pod["metadata"].get("labels") or {}).get("batch.kubernetes.io/controller-uid")
            if uid and uid not in jobs:
                self._stop(pod)
                self.store.remove(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])

    def close(self) -> None:
        for key, run in list(self.runs.items()):
            self.runtime.stop_pod(key[1])
            run.thread.join(timeout=120)
            for folder in run.temporary:
                shutil.rmtree(folder, ignore_errors=True)

    def _job(self, job: dict[str, Any]) -> None:
        meta, spec = job["metadata"], job["spec"]
        status = copy.deepcopy(job.get("status") or {})
        if _finished(status):
            self._expire(job, status)
            return
        pods = [
            p
            for p in self.store.items(PODS, meta["namespace"])
            if (p["metadata"].get("labels") or {}).get("batch.kubernetes.io/controller-uid")
            == meta["uid"]
        ]
        for pod in pods:
            self._advance(pod)
        phases = [(int(p["metadata"]["annotations"][INDEX]), p["status"]["phase"]) for p in pods]
        done = {i for i, phase in phases if phase == "Succeeded"}
        failed = sum(1 for _, phase in phases if phase == "Failed")
        active = [i for i, phase in phases if phase in ("Pending", "Running")]
        status.setdefault("startTime", now())
        completions = spec.get("completions") or 1
        deadline = spec.get("activeDeadlineSeconds")
        stop: tuple[str, str] | None = None
        if failed > spec.get("backoffLimit", 6):
            stop = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        elif deadline and _age(status["startTime"]) >= deadline:
            stop = ("DeadlineExceeded", "Job was active longer than specified deadline")
        if stop is None and len(done) < completions:
            wanted = [i for i in range(completions) if i not in done and i not in active]
            room = max(0, (spec.get("parallelism") or 1) - len(active))
            for index in wanted[:room]:
                self._create_pod(job, index)
                active.append(index)
        status.update(
            active=len(active),
            succeeded=len(done),
            failed=failed,
            ready=sum(1 for _, phase in phases if phase == "Running"),
            terminating=0,
            uncountedTerminatedPods={},
        )
        if spec.get("completionMode") == "Indexed":
            status["completedIndexes"] = _ranges(sorted(done))
        if stop is not None:
            for pod in pods:
                if pod["status"]["phase"] in ("Pending", "Running"):
                    self._stop(pod)
                    self.store.remove(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
            status["active"] = 0
            status["conditions"] = [
                _job_condition("FailureTarget", *stop),
                _job_condition("Failed", *stop),
            ]
        elif len(done) >= completions:
            status["completionTime"] = now()
            reached = ("CompletionsReached", "Reached expected number of succeeded pods")
            status["conditions"] = [
                _job_condition("SuccessCriteriaMet", *reached),
                _job_condition("Complete", *reached),
            ]
        if status != job.get("status"):
            self.store.put(JOBS, {**job, "status": status})

    def _expire(self, job: dict[str, Any], status: dict[str, Any]) -> None:
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        finished_at = status.get("completionTime") or status["conditions"][-1]["lastTransitionTime"]
        if ttl is not None and _age(finished_at) >= ttl:
            self.store.remove(JOBS, job["metadata"]["namespace"], job["metadata"]["name"])

    # -- pods ---------------------------------------------------------------------------

    def _create_pod(self, job: dict[str, Any], index: int) -> None:
        meta = job["metadata"]
        template = copy.deepcopy(job["spec"]["template"])
        name = f"{meta['name']}-{index}-{uuid.uuid4().hex[:5]}"
        labels = {
            **(template.get("metadata", {}).get("labels") or {}),
            "batch.kubernetes.io/controller-uid": meta["uid"],
            "batch.kubernetes.io/job-name": meta["name"],
            "controller-uid": meta["uid"],
            "job-name": meta["name"],
        }
        annotations = {**(template.get("metadata", {}).get("annotations") or {})}
        if job["spec"].get("completionMode") == "Indexed":
            labels[INDEX] = str(index)
            for container in template["spec"]["containers"]:
                container.setdefault("env", []).append(
                    {
                        "name": "JOB_COMPLETION_INDEX",
                        "valueFrom": {
                            "fieldRef": {
                                "apiVersion": "v1",
                                "fieldPath": f"metadata.annotations['{INDEX}']",
                            }
                        },
                    }
                )
        annotations[INDEX] = str(index)
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {**template["spec"], "nodeName": "fake-node-1"},
            "status": {"phase": "Pending", "qosClass": "Burstable"},
        }
        self.store.put(PODS, pod)

    def _advance(self, pod: dict[str, Any]) -> None:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        phase = pod["status"]["phase"]
        if phase == "Pending" and key not in self.runs:
            self._start(pod, key)
            return
        run = self.runs.get(key)
        if run is None or run.result is None or phase not in ("Pending", "Running"):
            return
        run.thread.join(timeout=30)  # the result is in: the thread is ending
        code, output = run.result
        lines = output.splitlines()
        self.logs[key] = lines
        container = pod["spec"]["containers"][0]
        terminated: dict[str, Any] = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": pod["status"].get("startTime", now()),
            "finishedAt": now(),
        }
        if code != 0 and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            terminated["message"] = "\n".join(lines[-TERMINATION_LINES:])[-TERMINATION_BYTES:]
        status = {
            **pod["status"],
            "phase": "Succeeded" if code == 0 else "Failed",
            "containerStatuses": [_terminated(container, terminated)],
        }
        self.store.put(PODS, {**pod, "status": status})
        for folder in run.temporary:
            shutil.rmtree(folder, ignore_errors=True)
        del self.runs[key]

    def _start(self, pod: dict[str, Any], key: tuple[str, str]) -> None:
        spec = pod["spec"]
        container = spec["containers"][0]
        temporary: list[str] = []
        mounts = self._mounts(spec, container, temporary)
        if isinstance(mounts, str):  # a claim the fake does not know: Pending, unschedulable
            condition = {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": f"0/1 nodes are available: {mounts}. preemption: 0/1 nodes are "
                "available: 1 Preemption is not helpful for scheduling.",
                "lastProbeTime": None,
                "lastTransitionTime": now(),
            }
            shown = [c.get("message") for c in pod["status"].get("conditions") or []]
            if shown != [condition["message"]]:
                status = {**pod["status"], "conditions": [condition]}
                self.store.put(PODS, {**pod, "status": status})
            return
        env = _environment(pod, container)
        argv = [_expand(a, env) for a in (container.get("command") or [])]
        argv += [_expand(a, env) for a in (container.get("args") or [])]
        security = spec.get("securityContext") or {}
        user = security.get("runAsUser", 0)
        user_spec = f"{user}:{security.get('runAsGroup', user)}"
        run = Run(threading.Thread(target=lambda: None), temporary)

        def body() -> None:
            try:
                run.result = self.runtime.run_pod(
                    key[1], container["image"], argv, env, mounts, user_spec
                )
            except Exception as exc:  # the container could not run: a failed pod
                run.result = (128, f"fake kubelet: {type(exc).__name__}: {exc}")

        run.thread = threading.Thread(target=body, daemon=True)
        self.runs[key] = run
        status = {
            **pod["status"],
            "phase": "Running",
            "startTime": now(),
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": container["image"],
                    "imageID": "",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now()}},
                }
            ],
        }
        self.store.put(PODS, {**pod, "status": status})
        run.thread.start()

    def _mounts(
        self, spec: dict[str, Any], container: dict[str, Any], temporary: list[str]
    ) -> list[tuple[str, str, bool]] | str:
        folders: dict[str, str] = {}
        for volume in spec.get("volumes") or []:
            if "hostPath" in volume:
                folders[volume["name"]] = volume["hostPath"]["path"]
            elif "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                if claim not in self.claims:
                    return f'persistentvolumeclaim "{claim}" not found'
                folders[volume["name"]] = self.claims[claim]
            elif "emptyDir" in volume:
                folders[volume["name"]] = tempfile.mkdtemp(prefix="k8sfake-emptydir-")
                temporary.append(folders[volume["name"]])
        mounts = []
        for mount in container.get("volumeMounts") or []:
            host = folders[mount["name"]]
            if mount.get("subPath"):
                host = f"{host.rstrip('/')}/{mount['subPath']}"
            mounts.append((host, mount["mountPath"], bool(mount.get("readOnly"))))
        return mounts

    def _stop(self, pod: dict[str, Any]) -> None:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        if key in self.runs:
            self.runtime.stop_pod(key[1])


def _environment(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """The container's env as the kubelet resolves it (values; fieldRef to annotations)."""
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = _expand(item["value"], env)
            continue
        path = ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath", "")
        found = re.fullmatch(r"metadata\.annotations\['([^']+)'\]", path)
        if found:
            env[item["name"]] = pod["metadata"].get("annotations", {}).get(found.group(1), "")
    return env


def _expand(text: str, env: dict[str, str]) -> str:
    """``$(VAR)`` from the env (unknown ones kept), ``$$`` an escaped ``$``."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
        text,
    )


def _finished(status: dict[str, Any]) -> bool:
    return any(
        c["type"] in ("Complete", "Failed") and c["status"] == "True"
        for c in status.get("conditions") or []
    )


def _age(stamp: str) -> float:
    then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (datetime.now(timezone.utc) - then).total_seconds()


def _ranges(indexes: list[int]) -> str:
    """``0-2,4``: the completedIndexes format."""
    parts: list[str] = []
    start = prev = None
    for i in [*indexes, None]:
        if i is not None and prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = i
    return ",".join(parts)


def _job_condition(type_: str, reason: str, message: str) -> dict[str, Any]:
    stamp = now()
    return {
        "type": type_,
        "status": "True",
        "lastProbeTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def _terminated(container: dict[str, Any], terminated: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": container["name"],
        "image": container["image"],
        "imageID": f"{container['image'].split('@')[0]}@sha256:{'0' * 64}",
        "ready": False,
        "started": False,
        "restartCount": 0,
        "state": {"terminated": terminated},
        "lastState": {},
        "containerID": "containerd://" + uuid.uuid4().hex * 2,
    }
