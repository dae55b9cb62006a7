"""Container runtimes behind the fake's pods and its service proxy.

- ``EchoRuntime`` answers like the image would (``{"predictions": [...]}``, health 200).
- ``DockerRuntime`` runs the real image, pulled from the registry the pod names, with the
  pod's restricted security context (non-root uid, read-only root filesystem, a tmpfs for
  the /tmp emptyDir, no capabilities), published on 127.0.0.1, and forwards to it.
"""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

import httpx


class EchoRuntime:
    """Every image is ready at once and predicts class 0 for each row."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []  # (image, method, path)

    def ready(self, image: str, pod: dict[str, Any]) -> bool:
        return True

    def request(
        self, image: str, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        self.calls.append((image, method, path))
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
            )
            self.containers.append(container)
            container.reload()
            port = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
            with self.lock:
                self.urls[image] = f"http://127.0.0.1:{port}"
        except Exception as exc:  # reported through the pod never becoming ready
            self.errors[image] = f"{type(exc).__name__}: {exc}"

    def request(
        self, image: str, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        url = self.urls.get(image)
        if url is None:
            return 503, {"content-type": "text/plain"}, b"container not running"
        response = httpx.request(method, url + path, headers=headers, content=body, timeout=30)
        return response.status_code, dict(response.headers), response.content

    def close(self) -> None:
        # a container still being started would be created after the clean-up below
        for thread in self._starting:
            thread.join(timeout=300)
        for container in self.containers:
            with contextlib.suppress(Exception):
                container.remove(force=True)
