"""Serve an image with Vertex AI's LocalModel / LocalEndpoint and predict through it.

``python vertex_local.py IMAGE ARTIFACT_DIR HOST_PORT`` (run with the venv of
tests/clients_support.py) prints one JSON object: the container spec the SDK built,
what the endpoint answered through the SDK (it returns the ``requests`` response, so
statuses are visible), the container as Docker runs it, its logs as the SDK prints
them, its state after the SDK stopped it, and every network connection the process
tried that was not to the loopback interface (all of them are refused).

The model declares Vertex-style routes and a container port that are not the SDK's
defaults (``/predict``, ``/health``, 8080); the SDK passes them to the container as
``AIP_PREDICT_ROUTE``, ``AIP_HEALTH_ROUTE`` and ``AIP_HTTP_PORT``. ``ARTIFACT_DIR``
is the endpoint's ``artifact_uri``: the SDK mounts its files under
/tmp_cpr_local_model and names that folder in ``AIP_STORAGE_URI``.

Offline by construction: ``aiplatform.init`` gets a project and anonymous credentials,
so the SDK's project lookup (``google.auth.default``, then Resource Manager) never runs;
``GOOGLE_APPLICATION_CREDENTIALS`` is unset (the test's environment) and no
``credential_path`` is given, so no key is mounted; the image is local (no pull).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import tempfile
import traceback
from typing import Any

from loopback_guard import BLOCKED, install  # this folder is sys.path[0]

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]]
CONTAINER_PORT = 18532  # AIP_HTTP_PORT: not the SDK's default 8080
PREDICT_ROUTE = "/v1/endpoints/4242/deployedModels/777:predict"
HEALTH_ROUTE = "/v1/endpoints/4242/deployedModels/777/healthz"
PROJECT = "deployer-local-test"
JSON_HEADERS = {"Content-Type": "application/json"}

install("vertex_local.py")

import docker  # noqa: E402  (after the guard: nothing may connect before it is in place)
import requests  # noqa: E402
from google.auth.credentials import AnonymousCredentials  # noqa: E402
from google.cloud import aiplatform  # noqa: E402
from google.cloud.aiplatform.prediction import LocalEndpoint, LocalModel  # noqa: E402


class LoopbackHostPort(tuple):  # type: ignore[type-arg]
    """``host_port`` that publishes on 127.0.0.1 only.

    The SDK runs the container with ``ports={AIP_HTTP_PORT: host_port}`` through the
    docker SDK, which binds a bare port on every interface; it has no setting for the
    host address. The docker SDK reads a ``(address, port)`` tuple as that binding, and
    the SDK's URLs (``f"http://localhost:{host_port}..."``) format this one as the port.
    The test checks the published binding on the running container.
    """

    def __new__(cls, port: int) -> LoopbackHostPort:
        return super().__new__(cls, ("127.0.0.1", port))

    def __format__(self, spec: str) -> str:
        return format(self[1], spec)

    def __str__(self) -> str:
        return str(self[1])


class Captured(logging.Handler):
    """Records what the SDK logs (it prints the container's logs through ``logging``)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answer(response: requests.Response) -> dict[str, Any]:
    return {
        "status": response.status_code,
        "content_type": response.headers.get("content-type"),
        "body": response.text,
    }


def _describe(container: Any) -> dict[str, Any]:
    container.reload()
    attrs = container.attrs
    env = dict(item.split("=", 1) for item in attrs["Config"]["Env"] or [])
    return {
        "id": container.id,
        "image": attrs["Config"]["Image"],
        "status": container.status,
        "port_bindings": attrs["HostConfig"]["PortBindings"],
        "mounts": sorted(m["Destination"] for m in attrs["Mounts"]),
        "aip_env": {k: v for k, v in env.items() if k.startswith("AIP_")},
        "google_env": {k: v for k, v in env.items() if k.startswith("GOOGLE_")},
        "cmd": attrs["Config"]["Cmd"],
        "entrypoint": attrs["Config"]["Entrypoint"],
    }


def _predictions(endpoint: LocalEndpoint, folder: str) -> dict[str, Any]:
    """Vertex's ``{"instances": [...]}`` body through ``LocalEndpoint.predict``."""
    body = json.dumps({"instances": ROWS})
    request_file = os.path.join(folder, "request.json")
    with open(request_file, "w") as handle:
        handle.write(body)
    proba = json.dumps({"instances": ROWS, "parameters": {"method": "predict_proba"}})
    return {
        "json": _answer(endpoint.predict(request=body, headers=JSON_HEADERS)),
        # the SDK sends no Content-Type unless told: a bare JSON body
        "no_content_type": _answer(endpoint.predict(request=body)),
        "request_file": _answer(endpoint.predict(request_file=request_file, headers=JSON_HEADERS)),
        "proba": _answer(endpoint.predict(request=proba, headers=JSON_HEADERS)),
    }


def _bad_requests(endpoint: LocalEndpoint) -> dict[str, Any]:
    """Requests the image must refuse with a 4xx and a message, through the SDK."""
    cases = {
        "wrong_width": (json.dumps({"instances": [[1.0, 2.0, 3.0]]}), JSON_HEADERS),
        "malformed_json": ('{"instances": [[1.0, 2.0', JSON_HEADERS),
        "no_instances": (json.dumps({"rows": ROWS}), JSON_HEADERS),
        "text_value": (json.dumps({"instances": [[5.1, "wide", 1.4, 0.2]]}), JSON_HEADERS),
        "unsupported_type": ("<instances/>", {"Content-Type": "application/xml"}),
        "unacceptable_accept": (
            json.dumps({"instances": ROWS}),
            {**JSON_HEADERS, "Accept": "image/png"},
        ),
    }
    return {
        key: _answer(endpoint.predict(request=body, headers=headers))
        for key, (body, headers) in cases.items()
    }


def _other_routes(port: int) -> dict[str, int]:
    """Plain HTTP on the published port: the SDK's and the image's default routes."""
    base = f"http://127.0.0.1:{port}"
    body = json.dumps({"instances": ROWS})
    return {
        "GET /health": requests.get(base + "/health", timeout=30).status_code,
        "POST /predict": requests.post(base + "/predict", data=body, timeout=30).status_code,
        "GET /vertex/health": requests.get(base + "/vertex/health", timeout=30).status_code,
        "GET " + PREDICT_ROUTE: requests.get(base + PREDICT_ROUTE, timeout=30).status_code,
    }


def run(image: str, artifact_dir: str, host_port: int) -> dict[str, Any]:
    seen: dict[str, Any] = {"sdk_version": aiplatform.__version__, "rows": ROWS}
    if not _port_is_free(host_port):
        return {**seen, "error": f"port {host_port} on 127.0.0.1 is taken: cannot publish on it"}
    logs = Captured()
    sdk_logger = logging.getLogger("google.cloud.aiplatform.docker_utils.run")
    sdk_logger.addHandler(logs)
    sdk_logger.setLevel(logging.INFO)
    aiplatform.init(project=PROJECT, location="us-central1", credentials=AnonymousCredentials())
    model = LocalModel(
        serving_container_image_uri=image,
        serving_container_predict_route=PREDICT_ROUTE,
        serving_container_health_route=HEALTH_ROUTE,
        serving_container_ports=[CONTAINER_PORT],
    )
    spec = model.get_serving_container_spec()
    seen["spec"] = {
        "image_uri": spec.image_uri,
        "predict_route": spec.predict_route,
        "health_route": spec.health_route,
        "ports": [p.container_port for p in spec.ports],
        "command": list(spec.command),
        "args": list(spec.args),
    }
    endpoint = model.deploy_to_local_endpoint(
        artifact_uri=artifact_dir,
        host_port=LoopbackHostPort(host_port),  # type: ignore[arg-type]
        container_ready_timeout=600,
    )
    seen["endpoint"] = {
        "predict_route": endpoint.serving_container_predict_route,
        "health_route": endpoint.serving_container_health_route,
        "container_port": endpoint.container_port,
    }
    engine = docker.from_env()
    try:
        with endpoint:  # serve(): runs the container, waits for the health route's 200
            seen["container_id"] = endpoint.container.id
            seen["running_after_serve"] = endpoint.container_is_running
            seen["container"] = _describe(endpoint.container)
            with tempfile.TemporaryDirectory() as folder:
                seen["predictions"] = _predictions(endpoint, folder)
            seen["health"] = _answer(endpoint.run_health_check())
            seen["bad_requests"] = _bad_requests(endpoint)
            seen["other_routes"] = _other_routes(host_port)
            endpoint.print_container_logs(show_all=True)
        seen["running_after_stop"] = endpoint.container_is_running
        try:
            endpoint.predict(request=json.dumps({"instances": ROWS}), headers=JSON_HEADERS)
            seen["predict_after_stop"] = "answered"
        except RuntimeError as exc:
            seen["predict_after_stop"] = str(exc)
    except Exception:
        seen["error"] = traceback.format_exc()
        seen["sdk_logs"] = logs.lines
    finally:
        if endpoint.container is not None:
            seen["container_id"] = endpoint.container.id
            container = engine.containers.get(endpoint.container.id)
            seen["after_stop"] = {
                "status": container.status,
                "exit_code": container.attrs["State"]["ExitCode"],
            }
        engine.close()
    seen["sdk_logs"] = logs.lines
    seen["blocked"] = BLOCKED
    return seen


if __name__ == "__main__":
    result = run(sys.argv[1], sys.argv[2], int(sys.argv[3]))
    sys.stdout.flush()
    print(json.dumps(result))
