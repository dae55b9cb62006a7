"""A runtime for the fake Vertex that serves each deployed model from a real container.

Like Vertex, it pulls the model's image from the registry (with the registry's
credentials), runs it as built with the AIP_* variables Vertex sets (port, health and
predict routes from the Model's container spec), waits for the health route, and
forwards rawPredict bodies to the predict route. Containers publish on 127.0.0.1 only.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from vertex_fake import DeployFailure

LABEL = "dev.deployer.test"
STARTUP_SECONDS = 90.0


class DockerRuntime:
    def __init__(self, client: Any, auth: dict[str, str]) -> None:
        self.client = client
        self.auth = auth
        self.running: dict[str, tuple[Any, str, str]] = {}  # id -> (container, url, route)

    def start(self, deployed_model_id: str, model: Any) -> None:
        from docker.errors import APIError

        spec = model.container_spec
        port = spec.ports[0].container_port if spec.ports else 8080
        try:
            self.client.images.pull(spec.image_uri, auth_config=self.auth)
        except APIError as exc:
            raise DeployFailure(
                f"Failed to pull image {spec.image_uri}: {exc.explanation}"
            ) from None
        environment = {e.name: e.value for e in spec.env}
        environment.update(
            AIP_HTTP_PORT=str(port),
            AIP_HEALTH_ROUTE=spec.health_route,
            AIP_PREDICT_ROUTE=spec.predict_route,
            AIP_MODE="PREDICTION",
            AIP_DEPLOYED_MODEL_ID=deployed_model_id,
            AIP_FRAMEWORK="CUSTOM_CONTAINER",
        )
        container = self.client.containers.run(
            spec.image_uri,
            detach=True,
            environment=environment,
            ports={f"{port}/tcp": ("127.0.0.1", None)},
            labels={LABEL: "gcp-fake-vertex"},
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        url = ""
        while time.monotonic() < deadline:
            container.reload()
            if container.status == "exited":
                logs = container.logs(tail=20).decode(errors="replace")
                container.remove(force=True)
                raise DeployFailure(f"Model server exited at start-up: {logs}")
            bindings = container.attrs["NetworkSettings"]["Ports"].get(f"{port}/tcp")
            if bindings:
                url = f"http://127.0.0.1:{bindings[0]['HostPort']}"
                try:
                    if httpx.get(url + spec.health_route, timeout=2).status_code == 200:
                        self.running[deployed_model_id] = (container, url, spec.predict_route)
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        container.remove(force=True)
        raise DeployFailure("Model server never became ready within the start-up deadline.")

    def predict(
        self, deployed_model_id: str, body: bytes, content_type: str
    ) -> tuple[int, bytes, str]:
        _, url, route = self.running[deployed_model_id]
        answer = httpx.post(
            url + route, content=body, headers={"content-type": content_type}, timeout=60
        )
        return answer.status_code, answer.content, answer.headers.get("content-type", "")

    def stop(self, deployed_model_id: str) -> None:
        entry = self.running.pop(deployed_model_id, None)
        if entry is not None:
            entry[0].remove(force=True)

    def close(self) -> None:
        for deployed_model_id in list(self.running):
            self.stop(deployed_model_id)
