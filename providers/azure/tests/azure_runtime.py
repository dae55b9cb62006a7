"""A runtime for the fake Azure ML that runs real containers of the deployed image.

On a deployment, it pulls the environment's image from the (local) registry with the
registry's credentials, runs it as Azure does (ENTRYPOINT/CMD as built, port from the
``inference_config``, published on 127.0.0.1 only), waits for the readiness route,
and forwards scoring calls to the declared scoring route. A container that never gets
ready fails the deployment with its last log lines, as Azure reports it.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import httpx
from azure_fake import RuntimeFailed

from deployer.image.containers import ContainerFailed, RunningContainer, run_container, wait_healthy


class DockerRuntime:
    def __init__(
        self, docker: Any, registry_auth: dict[str, str], startup_timeout: float = 90
    ) -> None:
        self.docker = docker
        self.auth = registry_auth
        self.startup_timeout = startup_timeout
        self.containers: dict[tuple[str, str], tuple[RunningContainer, str]] = {}
        self.lock = threading.Lock()

    def start(self, endpoint: str, deployment: str, image: str, config: dict[str, Any]) -> None:
        inference = config.get("inference") or {}
        readiness = inference.get("readinessRoute") or {"port": 8080, "path": "/"}
        scoring = inference.get("scoringRoute") or {"port": 8080, "path": "/score"}
        try:
            self.docker.images.pull(image, auth_config=self.auth)
        except Exception as exc:
            raise RuntimeFailed(f"ImagePullFailure: could not pull {image}: {exc}") from None
        running = run_container(
            self.docker,
            image,
            container_port=int(scoring["port"]),
            environment={"AZUREML_MODEL_DIR": "/var/azureml-app", **config.get("env", {})},
            name=f"azfake-{endpoint}-{deployment}-{uuid.uuid4().hex[:6]}",
            labels={"deployer-test": "azure-fake"},
        )
        try:
            wait_healthy(running, readiness["path"], self.startup_timeout)
        except ContainerFailed as exc:
            running.remove()
            raise RuntimeFailed(
                f"ResourceNotReady: User container has crashed or terminated: {exc.message}"
            ) from None
        with self.lock:
            self.containers[(endpoint, deployment)] = (running, scoring["path"])

    def invoke(
        self, endpoint: str, deployment: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, bytes]:
        with self.lock:
            running, path = self.containers[(endpoint, deployment)]
        forward = {k: v for k, v in headers.items() if k in ("content-type", "accept")}
        response = httpx.post(running.url + path, content=body, headers=forward, timeout=60)
        return (
            response.status_code,
            response.headers.get("content-type", ""),
            response.content,
        )

    def stop(self, endpoint: str, deployment: str) -> None:
        with self.lock:
            found = self.containers.pop((endpoint, deployment), None)
        if found is not None:
            found[0].remove()

    def logs(self, endpoint: str, deployment: str, lines: int) -> str:
        with self.lock:
            found = self.containers.get((endpoint, deployment))
        return found[0].logs(lines) if found else ""

    def close(self) -> None:
        with self.lock:
            running = [r for r, _ in self.containers.values()]
            self.containers.clear()
        for container in running:
            container.remove()
