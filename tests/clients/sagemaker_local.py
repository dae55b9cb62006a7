"""Deploy an image with the SageMaker Python SDK v2's local mode and predict through it.

``python sagemaker_local.py IMAGE MODEL_TARBALL PORT CONTAINER_ROOT`` (run with the
venv of tests/clients_support.py) prints one JSON object: what the SDK and the endpoint
answered, the compose service the SDK wrote, and every network connection the process
tried that was not to the loopback interface (all of them are refused).

Offline by construction: dummy credentials and region come from the environment (the
test sets them, with HOME and the AWS config files pointing at an empty folder and the
instance metadata service disabled); telemetry is opted out through the SDK's own
``SageMaker.PythonSDK.Modules.TelemetryOptOut`` setting; the model data is a local
``file://`` tarball and the image is local (not an ECR name, so no ECR login or pull).
"""

from __future__ import annotations

import base64
import contextlib
import glob
import json
import os
import socket
import sys
import threading
import traceback
from typing import Any

import numpy as np
from loopback_guard import BLOCKED, install  # this folder is sys.path[0]

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]]
ENDPOINT = "deployer-iris-local"
ROLE = "arn:aws:iam::111111111111:role/Dummy"

install("sagemaker_local.py")

import boto3  # noqa: E402  (after the guard: nothing may connect before it is in place)
import docker  # noqa: E402
import urllib3  # noqa: E402
import yaml  # noqa: E402
from sagemaker.deserializers import (  # noqa: E402
    CSVDeserializer,
    JSONDeserializer,
    NumpyDeserializer,
)
from sagemaker.local import LocalSession  # noqa: E402
from sagemaker.local.image import _HostingContainer  # noqa: E402
from sagemaker.model import Model  # noqa: E402
from sagemaker.predictor import Predictor  # noqa: E402
from sagemaker.serializers import CSVSerializer, JSONSerializer, NumpySerializer  # noqa: E402


class LoopbackPort(int):
    """``local.serving_port`` that publishes on 127.0.0.1 only.

    The SDK writes the compose service's ports as ``"%s:8080" % serving_port`` (all
    interfaces) and has no setting for the host address (``local.container_config`` is
    merged in before ``ports`` and ``networks``, which overwrite it). Its runtime client
    and health check format the same value with ``%d``. This int says ``127.0.0.1:PORT``
    as a string, so the compose file gets ``127.0.0.1:PORT:8080``, and is PORT as a number.
    The test checks the published binding on the running container.
    """

    def __str__(self) -> str:
        return f"127.0.0.1:{int(self)}"


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _session(port: int, container_root: str) -> LocalSession:
    session = LocalSession(
        boto_session=boto3.Session(),  # credentials and region from the environment
        sagemaker_config={
            "SchemaVersion": "1.0",
            "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
        },
    )
    session.config = {
        "local": {
            "local_code": True,  # code and model data stay on disk (no S3 upload)
            "serving_port": LoopbackPort(port),
            "container_root": container_root,
        }
    }
    return session


def _containers(engine: Any, container_root: str) -> list[Any]:
    """The compose containers the SDK started for a project under ``container_root``."""
    return [
        c
        for c in engine.containers.list(all=True)
        if c.labels.get("com.docker.compose.project.working_dir", "").startswith(container_root)
    ]


def _describe(container: Any) -> dict[str, Any]:
    attrs = container.attrs
    env_names = sorted(item.split("=", 1)[0] for item in attrs["Config"]["Env"] or [])
    return {
        "name": container.name,
        "image": attrs["Config"]["Image"],
        "status": container.status,
        "port_bindings": attrs["HostConfig"]["PortBindings"],
        "network_mode": attrs["HostConfig"]["NetworkMode"],
        "networks": sorted(attrs["NetworkSettings"]["Networks"]),
        "mounts": sorted(m["Destination"] for m in attrs["Mounts"]),
        "aws_env": [name for name in env_names if name.startswith("AWS_")],
        "command": attrs["Config"]["Cmd"],
        # the server's start-up line about the model data the SDK mounted at /opt/ml/model
        "artifact_notices": [
            line.strip()
            for line in container.logs().decode(errors="replace").splitlines()
            if "not using" in line
        ],
    }


def _compose_service(container_root: str) -> dict[str, Any]:
    """The service the SDK wrote into docker-compose.yaml (values of env vars masked)."""
    files = glob.glob(os.path.join(container_root, "*", "docker-compose.yaml"))
    if len(files) != 1:
        return {"error": f"found compose files {files}"}
    with open(files[0]) as handle:
        content = yaml.safe_load(handle)
    (service,) = content["services"].values()
    service["environment"] = sorted(item.split("=", 1)[0] for item in service["environment"])
    service.pop("volumes", None)
    return {"service": service, "networks": content.get("networks")}


def _http(port: int) -> dict[str, Any]:
    """Plain HTTP on the published port: the statuses the SDK does not look at."""
    pool = urllib3.PoolManager()
    base = f"http://127.0.0.1:{port}"
    body = json.dumps(ROWS).encode()

    def post(data: bytes, content_type: str, accept: str = "application/json") -> Any:
        headers = {"Content-Type": content_type, "Accept": accept}
        response = pool.request("POST", base + "/invocations", body=data, headers=headers)
        return {"status": response.status, "body": response.data.decode(errors="replace")}

    ping = pool.request("GET", base + "/ping")
    return {
        "ping": ping.status,
        "json": post(body, "application/json"),
        "wrong_width": post(json.dumps([[1.0, 2.0, 3.0]]).encode(), "application/json"),
        "malformed_json": post(b"[[1.0, 2.0", "application/json"),
        "unsupported_type": post(b"<rows/>", "application/xml"),
        "unacceptable_accept": post(body, "application/json", "image/png"),
    }


def _runtime_client(session: LocalSession) -> dict[str, Any]:
    """The SDK's local runtime client returns the raw response: its status is readable."""
    seen = {}
    for key, body, content_type in (
        ("ok", json.dumps(ROWS), "application/json"),
        ("wrong_width", json.dumps([[1.0, 2.0, 3.0]]), "application/json"),
        ("unsupported_type", "<rows/>", "application/xml"),
    ):
        answer = session.sagemaker_runtime_client.invoke_endpoint(
            Body=body, EndpointName=ENDPOINT, ContentType=content_type, Accept="application/json"
        )
        response = answer["Body"]
        seen[key] = {"status": response.status, "body": response.read().decode()}
        response.release_conn()
    return seen


def _predict(session: LocalSession, as_json: Predictor) -> dict[str, Any]:
    """``as_json``: what deploy returned (JSON both ways); the others on the same endpoint."""

    def predictor(serializer: Any, deserializer: Any) -> Predictor:
        return Predictor(ENDPOINT, session, serializer=serializer, deserializer=deserializer)

    as_csv = predictor(CSVSerializer(), CSVDeserializer())
    as_npy = predictor(NumpySerializer(), NumpyDeserializer())
    npy = as_npy.predict(np.array(ROWS))
    npy_proba = as_npy.predict(np.array(ROWS), custom_attributes="method=predict_proba")
    return {
        "json": as_json.predict(ROWS),
        "json_proba": as_json.predict(ROWS, custom_attributes="method=predict_proba"),
        "csv": as_csv.predict(ROWS),
        "csv_proba": as_csv.predict(ROWS, custom_attributes="method=predict_proba"),
        "npy": {"dtype": str(npy.dtype), "data": npy.tolist()},
        "npy_proba": {"dtype": str(npy_proba.dtype), "data": npy_proba.tolist()},
        # a 400 answer, deserialized by the SDK as if it were a prediction
        "json_bad_request": as_json.predict([[1.0, 2.0, 3.0]]),
        "content_types": {
            "json": [as_json.content_type, as_json.accept],
            "csv": [as_csv.content_type, as_csv.accept],
            "npy": [as_npy.content_type, as_npy.accept],
        },
    }


def _stop_strays() -> list[int]:
    """Terminate compose processes the SDK did not stop (only after a failure)."""
    stopped = []
    for thread in threading.enumerate():
        if isinstance(thread, _HostingContainer) and thread.process is not None:
            if thread.process.poll() is None:
                thread.process.terminate()
                stopped.append(thread.process.pid)
            thread.join(timeout=60)
    return stopped


def run(image: str, tarball: str, port: int, container_root: str) -> dict[str, Any]:
    seen: dict[str, Any] = {"sdk_version": __import__("sagemaker").__version__, "rows": ROWS}
    if not _port_is_free(port):
        return {**seen, "error": f"port {port} on 127.0.0.1 is taken: cannot publish on it"}
    engine = docker.from_env()
    session = _session(port, container_root)
    model = Model(
        image_uri=image,
        model_data="file://" + os.path.abspath(tarball),
        role=ROLE,
        sagemaker_session=session,
        name="deployer-iris-local-model",
        predictor_cls=Predictor,  # without it, deploy returns None
    )
    try:
        predictor = model.deploy(
            initial_instance_count=1,
            instance_type="local",
            endpoint_name=ENDPOINT,
            serializer=JSONSerializer(),
            deserializer=JSONDeserializer(),
        )
        seen["deploy_returned"] = type(predictor).__name__
        seen["endpoint_status"] = session.sagemaker_client.describe_endpoint(EndpointName=ENDPOINT)[
            "EndpointStatus"
        ]
        seen["containers"] = [_describe(c) for c in _containers(engine, container_root)]
        seen["compose"] = _compose_service(container_root)
        seen["predictions"] = _predict(session, predictor)
        seen["runtime_client"] = _runtime_client(session)
        seen["http"] = _http(port)
        # the SDK's own teardown, as a user runs it: the model first (delete_model finds
        # it through the endpoint config, which delete_endpoint removes)
        predictor.delete_model()
        predictor.delete_endpoint()
        seen["deleted"] = True
    except Exception:
        seen["error"] = traceback.format_exc()
        # best effort, so the test's own clean-up finds only stopped containers
        with contextlib.suppress(Exception):
            session.sagemaker_client.delete_endpoint(EndpointName=ENDPOINT)
    finally:
        seen["stray_compose_pids"] = _stop_strays()
        after = _containers(engine, container_root)
        seen["after_delete"] = {
            "containers": [{"name": c.name, "status": c.status} for c in after],
            "networks": [n.name for n in engine.networks.list(names=["sagemaker-local"])],
            "container_root": sorted(os.listdir(container_root)),
        }
        engine.close()
    seen["blocked"] = BLOCKED
    return seen


if __name__ == "__main__":
    result = run(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
    sys.stdout.flush()
    print(json.dumps(result, default=lambda v: base64.b64encode(v).decode()))
