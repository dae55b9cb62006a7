"""Container runtimes behind the fake's pods and its service proxy.

- ``EchoRuntime`` answers like the image would (``{"predictions": [...]}``, health 200), and
  ``/metrics`` in the model server's Prometheus format: what it served, plus the traffic a
  test scripts per image (``script``: each scrape of a pod of that image adds it, so a test
  makes a canary's image "bad", answering 500s or slowly, in virtual time).
- ``DockerRuntime`` runs the real image, pulled from the registry the pod names, with the
  pod's restricted security context (non-root uid, read-only root filesystem, a tmpfs for
  the /tmp emptyDir, no capabilities), published on 127.0.0.1, and forwards to it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx

# the model server's latency buckets (deployer.serving.metrics), in seconds
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METRIC = "deployer_request_duration_seconds"


@dataclass
class Traffic:
    """What each scrape of a pod of one image adds: ``ok`` 200s and ``errors`` 500s on
    /invocations, each taking ``seconds``."""

    ok: int = 0
    errors: int = 0
    seconds: float = 0.002


class PodMetrics:
    """One pod's request histogram, rendered as the model server's ``/metrics`` text."""

    def __init__(self) -> None:
        self.observations: dict[tuple[str, str], list[float]] = {}  # (route, status) -> secs

    def observe(self, route: str, status: int, seconds: float, count: int = 1) -> None:
        self.observations.setdefault((route, str(status)), []).extend([seconds] * count)

    def text(self) -> str:
        lines = [f"# HELP {METRIC} Time to answer a request, by route and status code.",
                 f"# TYPE {METRIC} histogram"]  # fmt: skip
        for (route, status), values in sorted(self.observations.items()):
            labels = f'route="{route}",status="{status}"'
            for bound in BUCKETS:
                count = sum(1 for v in values if v <= bound)
                lines.append(f'{METRIC}_bucket{{{labels},le="{bound}"}} {float(count)}')
            lines.append(f'{METRIC}_bucket{{{labels},le="+Inf"}} {float(len(values))}')
            lines.append(f"{METRIC}_count{{{labels}}} {float(len(values))}")
            lines.append(f"{METRIC}_sum{{{labels}}} {sum(values)}")
        return "\n".join(lines) + "\n"


class EchoRuntime:
    """Every image is ready at once and predicts class 0 for each row; ``/metrics`` counts
    what each pod served plus the traffic scripted for its image."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []  # (image, method, path)
        self.scripts: dict[str, Traffic] = {}
        self.metrics: dict[str, PodMetrics] = {}  # pod (or image, through a Service) -> ...
        self.lock = threading.Lock()
        self.environ: dict[str, dict[str, str]] = {}  # pod -> its container's env
        self.log_lines: dict[str, list[tuple[float, str]]] = {}  # pod -> (time, line)

    def script(self, image: str, ok: int = 0, errors: int = 0, seconds: float = 0.002) -> None:
        """Each scrape of a pod running ``image`` adds this traffic to its counters."""
        self.scripts[image] = Traffic(ok, errors, seconds)

    def scrape(self, image: str, pod: str) -> str:
        """A pod's ``/metrics`` text after the scripted traffic since its last scrape."""
        with self.lock:
            metrics = self.metrics.setdefault(pod, PodMetrics())
            traffic = self.scripts.get(image)
            if traffic is not None:
                metrics.observe("/invocations", 200, traffic.seconds, traffic.ok)
                metrics.observe("/invocations", 500, traffic.seconds, traffic.errors)
            return metrics.text()

    def ready(self, image: str, pod: dict[str, Any]) -> bool:
        container = pod["spec"]["containers"][0]
        env = {e["name"]: e.get("value", "") for e in container.get("env") or []}
        with self.lock:
            self.environ[pod["metadata"]["name"]] = env
        return True

    def log(self, pod: str, line: str, at: float | None = None) -> None:
        """A line on ``pod``'s stdout, written at ``at`` (epoch seconds; default now)."""
        with self.lock:
            self.log_lines.setdefault(pod, []).append((time.time() if at is None else at, line))

    def logs(self, image: str, pod: str, since_seconds: int | None) -> list[str]:
        """The pod's stdout, as the kubelet serves it (``sinceSeconds``)."""
        cutoff = time.time() - since_seconds if since_seconds else float("-inf")
        with self.lock:
            return [line for at, line in self.log_lines.get(pod, []) if at >= cutoff]

    def _capture(self, pod: str | None, body: bytes, predictions: list[Any]) -> None:
        """What the image's capture writes to stdout when DEPLOYER_CAPTURE says so (every
        request: tests set sample 1; feature names f0, f1, ...; no redaction)."""
        from deployer.providers import monitoring

        spec = monitoring.CaptureSpec.from_env(self.environ.get(pod or "", {}))
        if spec is None or spec.destination != "stdout":
            return
        record: dict[str, Any] = {
            "request_id": uuid.uuid4().hex,
            "time": monitoring.format_time(datetime.now(timezone.utc)),
        }
        if spec.inputs:
            record["rows"] = [{f"f{i}": v for i, v in enumerate(r)} for r in json.loads(body)]
        if spec.outputs:
            record["predictions"] = predictions
        assert pod is not None
        self.log(pod, monitoring.CAPTURE_STDOUT_PREFIX + json.dumps(record))

    def request(
        self,
        image: str,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        pod: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        self.calls.append((image, method, path))
        key = pod or image
        if method == "GET" and path == "/metrics":
            text = self.scrape(image, key).encode()
            return 200, {"content-type": "text/plain; version=0.0.4; charset=utf-8"}, text
        status, answer, data = self._answer(image, method, path, body)
        if path.startswith("/invocations"):
            with self.lock:
                self.metrics.setdefault(key, PodMetrics()).observe("/invocations", status, 0.001)
            if status == 200:
                self._capture(pod, body, json.loads(data)["predictions"])
        return status, answer, data

    def _answer(
        self, image: str, method: str, path: str, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if method == "GET" and path in ("/ping", "/v2/health/ready", "/v2/health/live"):
            return 200, {"content-type": "application/json"}, b"{}"
        if method == "POST" and path == "/invocations":
            try:
                rows = json.loads(body)
            except ValueError:
                return 400, {"content-type": "application/json"}, b'{"error": "malformed JSON"}'
            answer = {"predictions": [0 for _ in rows]}
            headers = {"content-type": "application/json", "x-fake-image": image}
            return 200, headers, json.dumps(answer).encode()
        return 404, {"content-type": "application/json"}, b'{"error": "not found"}'

    def run_pod(
        self,
        name: str,
        image: str,
        argv: list[str],
        env: dict[str, str],
        mounts: list[tuple[str, str, bool]],
        user: str,
    ) -> tuple[int, str]:
        """A Job's pod over the mounts: the batch runner's stand-in (``echo_batch``), or the
        real capture dump (``echo_capture``)."""
        from k8sfake import echo_batch, echo_capture

        self.calls.append((image, "RUN", " ".join(argv)))
        if argv[:3] == echo_capture.MODULE:
            return echo_capture.run(argv, mounts)
        return echo_batch.run(argv, mounts)

    def stop_pod(self, name: str) -> None:
        pass

    def close(self) -> None:
        pass


class DockerRuntime:
    """One real container per image (shared by that image's pods), started in the background."""

    def __init__(self, client: Any, auth: dict[str, str] | None = None) -> None:
        self.client = client
        self.auth = auth
        self.lock = threading.Lock()
        self.urls: dict[str, str | None] = {}  # image -> url once started (None: starting)
        self.containers: list[Any] = []
        self.errors: dict[str, str] = {}
        self._starting: list[threading.Thread] = []
        self.by_image: dict[str, Any] = {}
        self.jobs: dict[str, Any] = {}  # a Job pod's name -> its running container

    def logs(self, image: str, pod: str, since_seconds: int | None) -> list[str]:
        """The stdout of the image's container (shared by its pods), ``sinceSeconds`` on."""
        container = self.by_image.get(image)
        if container is None:
            return []
        since = int(time.time()) - since_seconds if since_seconds else None
        # the kubelet's log holds both streams
        text = container.logs(stdout=True, stderr=True, since=since).decode(errors="replace")
        return text.splitlines()

    def ready(self, image: str, pod: dict[str, Any]) -> bool:
        with self.lock:
            if image not in self.urls:
                self.urls[image] = None
                thread = threading.Thread(target=self._start, args=(image, pod), daemon=True)
                self._starting.append(thread)
                thread.start()
                return False
            url = self.urls[image]
        if url is None:
            return False
        try:
            return httpx.get(url + "/v2/health/ready", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def _start(self, image: str, pod: dict[str, Any]) -> None:
        try:
            repository, _, digest = image.partition("@")
            if digest:
                self.client.images.pull(repository, tag=digest, auth_config=self.auth)
            else:
                self.client.images.pull(image, auth_config=self.auth)
            security = pod["spec"].get("securityContext", {})
            container_spec = pod["spec"]["containers"][0]
            context = container_spec.get("securityContext", {})
            user = security.get("runAsUser", 10001)
            container = self.client.containers.run(
                image,
                command=container_spec.get("args") or ["serve"],
                detach=True,
                auto_remove=False,
                user=f"{user}:{security.get('runAsGroup', user)}",
                read_only=bool(context.get("readOnlyRootFilesystem")),
                tmpfs={"/tmp": "rw,size=64m"},
                cap_drop=context.get("capabilities", {}).get("drop", []),
                security_opt=["no-new-privileges"],
                ports={"8080/tcp": ("127.0.0.1", None)},
                labels={"deployer-test": "k8sfake"},
                environment={e["name"]: e.get("value", "") for e in container_spec.get("env", [])},
            )
            self.containers.append(container)
            with self.lock:
                self.by_image[image] = container
            container.reload()
            port = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
            with self.lock:
                self.urls[image] = f"http://127.0.0.1:{port}"
        except Exception as exc:  # reported through the pod never becoming ready
            self.errors[image] = f"{type(exc).__name__}: {exc}"

    def request(
        self,
        image: str,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        pod: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        url = self.urls.get(image)
        if url is None:
            return 503, {"content-type": "text/plain"}, b"container not running"
        response = httpx.request(method, url + path, headers=headers, content=body, timeout=30)
        return response.status_code, dict(response.headers), response.content

    def run_pod(
        self,
        name: str,
        image: str,
        argv: list[str],
        env: dict[str, str],
        mounts: list[tuple[str, str, bool]],
        user: str,
    ) -> tuple[int, str]:
        """A Job's pod: the real image run to its end with the pod's command, env, user and
        volumes (host folders), read-only root and no capabilities, as the kubelet would."""
        from docker.types import Mount

        repository, _, digest = image.partition("@")
        if digest:
            self.client.images.pull(repository, tag=digest, auth_config=self.auth)
        container = self.client.containers.run(
            image,
            entrypoint=argv[:1],
            command=argv[1:],
            environment=env,
            detach=True,
            user=user,
            read_only=True,
            tmpfs={"/tmp": "rw,size=64m"},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            network_disabled=True,
            mounts=[
                Mount(inside, folder, type="bind", read_only=read_only)
                for folder, inside, read_only in mounts
                if inside != "/tmp"
            ],
            labels={"deployer-test": "k8sfake", "k8sfake-pod": name},
        )
        with self.lock:
            self.jobs[name] = container
        try:
            code = int(container.wait()["StatusCode"])
            output = container.logs(stdout=True, stderr=True).decode(errors="replace")
        finally:
            with self.lock:
                self.jobs.pop(name, None)
            with contextlib.suppress(Exception):
                container.remove(force=True)
        return code, output

    def stop_pod(self, name: str) -> None:
        container = self.jobs.get(name)
        if container is not None:
            with contextlib.suppress(Exception):
                container.kill()

    def close(self) -> None:
        # a container still being started would be created after the clean-up below
        for thread in self._starting:
            thread.join(timeout=300)
        for container in self.containers:
            with contextlib.suppress(Exception):
                container.remove(force=True)
