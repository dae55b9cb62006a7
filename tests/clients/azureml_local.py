"""Deploy an image as an Azure ML local online endpoint (azure-ai-ml, ``local=True``).

``python azureml_local.py IMAGE INFERENCE_CONFIG_JSON MODEL_FOLDER WORK_FOLDER NAME`` (run
with the venv of tests/clients_support.py) prints one JSON object: what the SDK answered
(endpoint and deployment state, scoring URI, invoke results, logs), what its container
looked like, plain-HTTP statuses on the routes of ``inference_config``, and every network
connection the process tried that was not to the loopback interface (all are refused).

The SDK's local path (azure/ai/ml/operations/_local_deployment_helper.py and
_local_endpoints/docker_client.py, read in 1.35.2):

- an environment with ``inference_config`` is "bring your own container": the image is
  run as it is (``images.get``, then a pull only if it is missing), nothing is built;
- the model folder's *parent* is bind-mounted (``SRC:DST:z``) at
  ``/var/azureml-app/azureml-models/NAME/VERSION`` and named by ``AZUREML_MODEL_DIR``
  (spelt ``azureml-models//NAME/VERSION``); validators/model_validator.py returns
  ``Path(model.path).resolve().parent``. docker-py also declares ``DST:z`` as a container
  volume, so an anonymous volume is made, and ``container.remove()`` leaves it;
- the scoring URI is always ``http://localhost:PORT/score`` (``get_scoring_uri_from_
  container``: "TODO: resolve scoring path correctly"): the path in ``scoring_route`` is
  not used, only its port;
- ``create_or_update`` sleeps 15 s and checks that the container has not exited; it never
  calls the readiness route, so the driver waits on it before invoking;
- ``invoke`` returns the body whatever the status, so statuses are read with plain HTTP;
- metadata lives in container labels and under ``~/.azureml/inferencing/ENDPOINT``; the
  deletes remove the container and that folder (``~/.azureml/inferencing`` stays).

Three things of the SDK's are worked around here, each as narrowly as it allows:

1. ports: the container is created with ``publish_all_ports=True`` (docker_client.py,
   ``DockerClient.create_deployment``): every EXPOSEd port on every host interface, and
   no setting for the address. ``LoopbackContainers`` turns exactly that argument into
   the same ports bound to 127.0.0.1 (random host ports); the test checks the bindings.
2. a deployment without ``code_configuration`` (a custom container has none) fails
   locally: see ``_image_context``.
3. ``Environment(image=..., inference_config={...})`` fails locally: see
   ``_environment``, which builds the same Environment with the SDK's YAML loader.

Offline by construction: a dummy credential (never asked for a token on this path),
dummy workspace coordinates, ``enable_telemetry=False``, and ``HOME`` set by the test.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from loopback_guard import BLOCKED, install  # this folder is sys.path[0]

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]]
DEPLOYMENT = "blue"
READY_DEADLINE_S = 180.0
LABEL = "azureml-local-endpoint"  # LocalEndpointConstants.LABEL_KEY_AZUREML_LOCAL_ENDPOINT

install("azureml_local.py")

import azure.ai.ml  # noqa: E402  (after the guard: nothing may connect before it is in place)
import docker  # noqa: E402
from azure.ai.ml import MLClient, load_environment  # noqa: E402
from azure.ai.ml.entities import (  # noqa: E402
    Environment,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    Model,
)
from azure.ai.ml.operations import _local_deployment_helper  # noqa: E402
from azure.core.credentials import AccessToken  # noqa: E402
from docker.models.containers import ContainerCollection  # noqa: E402

TOKEN_REQUESTS: list[tuple[str, ...]] = []
NONE_CODE_PATHS: list[str] = []  # each time the SDK passed the string "None" as code folder
_ImageContext = _local_deployment_helper.AzureMlImageContext


def _image_context(**kwargs: Any) -> Any:
    """Undo the SDK's ``str(None)`` for a deployment without ``code_configuration``.

    _local_deployment_helper.py (1.35.2, line 239) passes
    ``yaml_code_directory_path=str(code_directory_path)``, which is ``"None"`` when the
    deployment has no code (a custom container needs none); AzureMlImageContext takes
    that truthy string for a code folder and fails on ``os.path.dirname(None)`` (the
    scoring script). Reported as Azure/azure-sdk-for-python#42995. Only that value is
    changed back to None; everything else reaches the SDK's class as it was."""
    if kwargs.get("yaml_code_directory_path") == "None":
        NONE_CODE_PATHS.append("None")
        kwargs["yaml_code_directory_path"] = None
    return _ImageContext(**kwargs)


_local_deployment_helper.AzureMlImageContext = _image_context  # type: ignore[misc,assignment]


class DummyCredential:
    """A TokenCredential that records every request for a token (none is expected)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        TOKEN_REQUESTS.append(scopes)
        return AccessToken("dummy-token", int(time.time()) + 3600)


class LoopbackContainers(ContainerCollection):
    """``containers.create(..., publish_all_ports=True)`` on 127.0.0.1 only.

    The SDK asks for every EXPOSEd port on every interface and has no setting for the
    host address; this binds the same ports, each to a random port on 127.0.0.1."""

    def create(self, image: Any, command: Any = None, **kwargs: Any) -> Any:
        if kwargs.pop("publish_all_ports", False):
            exposed = self.client.images.get(image).attrs["Config"].get("ExposedPorts") or {}
            kwargs["ports"] = {port: ("127.0.0.1", None) for port in exposed}
        return super().create(image, command, **kwargs)


class LoopbackDockerClient(docker.DockerClient):
    """The docker client the SDK's deployment helper uses, with ``LoopbackContainers``."""

    @property
    def containers(self) -> ContainerCollection:
        return LoopbackContainers(client=self)


def _ml_client() -> MLClient:
    client = MLClient(
        DummyCredential(),
        subscription_id="00000000-0000-0000-0000-000000000000",
        resource_group_name="deployer-offline",
        workspace_name="deployer-offline",
        enable_telemetry=False,
        show_progress=False,
    )
    # the one docker client that creates containers (DockerClient._client is lazy)
    helper = client.online_deployments._local_deployment_helper
    helper._docker_client._lazy_client = LoopbackDockerClient.from_env()
    return client


def _http(method: str, url: str, body: bytes | None = None, content_type: str = "") -> Any:
    """Plain HTTP: status and body, whatever the status."""
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return {"status": response.status, "body": response.read().decode(errors="replace")}
    except urllib.error.HTTPError as error:
        return {"status": error.code, "body": error.read().decode(errors="replace")}
    except OSError as error:
        return {"status": None, "body": repr(error)}


def _wait_ready(url: str) -> list[Any]:
    """Poll the readiness route until it answers 200 (the SDK does not); the statuses seen."""
    statuses: list[Any] = []
    deadline = time.monotonic() + READY_DEADLINE_S
    while time.monotonic() < deadline:
        status = _http("GET", url)["status"]
        if not statuses or statuses[-1] != status:
            statuses.append(status)
        if status == 200:
            break
        time.sleep(0.5)
    return statuses


def _describe(container: Any) -> dict[str, Any]:
    attrs = container.attrs
    env = dict(item.split("=", 1) for item in attrs["Config"]["Env"] or [])
    return {
        "name": container.name,
        "image": attrs["Config"]["Image"],
        "status": container.status,
        "port_bindings": attrs["HostConfig"]["PortBindings"],  # as requested
        "ports": attrs["NetworkSettings"]["Ports"],  # as published
        "publish_all_ports": attrs["HostConfig"]["PublishAllPorts"],
        "binds": attrs["HostConfig"]["Binds"],
        "mounts": [
            {k: m.get(k) for k in ("Type", "Name", "Source", "Destination")}
            for m in attrs["Mounts"]
        ],
        "env": {k: v for k, v in env.items() if k.startswith(("AZUREML_", "AML_"))},
        "labels": sorted(attrs["Config"]["Labels"]),
        "azureml_port": attrs["Config"]["Labels"].get("azureml-port"),
    }


def _our_containers(engine: Any, endpoint: str) -> list[Any]:
    return engine.containers.list(all=True, filters={"label": [LABEL, f"endpoint={endpoint}"]})


def _environment(folder: Path, image: str, config: dict[str, Any]) -> Environment:
    """The custom container as ``az ml online-deployment create --local -f`` reads it.

    ``Environment(image=..., inference_config={...})`` keeps the dict as given; the
    remote path converts it (entities/_assets/environment.py,
    ``_to_rest_inference_config``) but the local one reads
    ``inference_config.scoring_route.port`` (_local_deployment_helper.py, line 312) and
    fails on a dict. The SDK's own YAML loader gives the typed routes that path needs
    (JSON is YAML)."""
    source = folder / "environment.yml"
    source.write_text(
        json.dumps({"name": "deployer-iris", "image": image, "inference_config": config})
    )
    return load_environment(source=source)


def _write(folder: Path, name: str, payload: Any) -> str:
    path = folder / name
    path.write_text(json.dumps(payload))
    return str(path)


def _invoke(client: MLClient, endpoint: str, folder: Path) -> dict[str, Any]:
    """``online_endpoints.invoke(local=True)``: the text it returns, for good and bad rows."""
    requests = {
        "rows": ROWS,
        "proba": {"instances": ROWS, "parameters": {"method": "predict_proba"}},
        "wrong_width": [[1.0, 2.0, 3.0]],
        "not_rows": {"input": "nothing"},
    }
    answers = {}
    for key, payload in requests.items():
        request_file = _write(folder, f"request-{key}.json", payload)
        answers[key] = client.online_endpoints.invoke(
            endpoint_name=endpoint, request_file=request_file, local=True
        )
    # naming the deployment adds the azureml-model-deployment header
    answers["rows_to_deployment"] = client.online_endpoints.invoke(
        endpoint_name=endpoint,
        request_file=str(folder / "request-rows.json"),
        deployment_name=DEPLOYMENT,
        local=True,
    )
    return answers


def _plain_http(port: str, config: dict[str, Any], scoring_uri: str) -> dict[str, Any]:
    """The routes of ``inference_config`` and bad requests on the SDK's scoring URI."""
    base = f"http://127.0.0.1:{port}"
    body = json.dumps(ROWS).encode()
    return {
        "liveness": _http("GET", base + config["liveness_route"]["path"]),
        "readiness": _http("GET", base + config["readiness_route"]["path"]),
        "scoring": _http("POST", base + config["scoring_route"]["path"], body, "application/json"),
        "wrong_width": _http("POST", scoring_uri, b"[[1.0, 2.0, 3.0]]", "application/json"),
        "malformed_json": _http("POST", scoring_uri, b"[[1.0, 2.0", "application/json"),
        "unsupported_type": _http("POST", scoring_uri, b"<rows/>", "application/xml"),
        "get_on_scoring": _http("GET", scoring_uri),
    }


def _home_tree() -> list[str]:
    """Every path under HOME (a folder of the test's own), relative to it."""
    home = Path.home()
    return sorted(str(p.relative_to(home)) for p in home.rglob("*"))


def run(image: str, config: dict[str, Any], model_folder: str, work: str, name: str) -> Any:
    seen: dict[str, Any] = {"sdk_version": azure.ai.ml.__version__, "rows": ROWS}
    folder = Path(work)
    engine = docker.from_env()
    client = _ml_client()
    endpoint = ManagedOnlineEndpoint(name=name, auth_mode="key")
    deployment = ManagedOnlineDeployment(
        name=DEPLOYMENT,
        endpoint_name=name,
        model=Model(name="iris", version="1", path=model_folder),
        environment=_environment(folder, image, config),
        instance_type="Standard_DS3_v2",
        instance_count=1,
    )
    try:
        created = client.online_endpoints.begin_create_or_update(endpoint, local=True)
        seen["endpoint_created"] = {"name": created.name, "state": created.provisioning_state}
        made = client.online_deployments.begin_create_or_update(deployment, local=True)
        seen["deployment_created"] = {"name": made.name, "state": made.provisioning_state}
        seen["containers"] = [_describe(c) for c in _our_containers(engine, name)]
        got = client.online_endpoints.get(name=name, local=True)
        seen["endpoint"] = {"state": got.provisioning_state, "scoring_uri": got.scoring_uri}
        dep = client.online_deployments.get(name=DEPLOYMENT, endpoint_name=name, local=True)
        seen["deployment"] = {"state": dep.provisioning_state}
        (container,) = seen["containers"]
        ((binding,),) = container["ports"].values()
        port = binding["HostPort"]
        ready = config["readiness_route"]
        seen["readiness_statuses"] = _wait_ready(f"http://127.0.0.1:{port}{ready['path']}")
        seen["invoke"] = _invoke(client, name, folder)
        seen["http"] = _plain_http(port, config, got.scoring_uri)
        seen["logs"] = client.online_deployments.get_logs(
            name=DEPLOYMENT, endpoint_name=name, lines=200, local=True
        )
        seen["home_while_up"] = _home_tree()
        # the SDK's own teardown: the deployment, then the endpoint
        client.online_deployments.begin_delete(name=DEPLOYMENT, endpoint_name=name, local=True)
        client.online_endpoints.begin_delete(name=name, local=True)
        seen["deleted"] = True
    except Exception:
        seen["error"] = traceback.format_exc()
        with contextlib.suppress(Exception):
            client.online_endpoints.begin_delete(name=name, local=True)
    finally:
        seen["after_delete"] = {
            "containers": [c.name for c in _our_containers(engine, name)],
            "home": _home_tree(),
        }
        engine.close()
    seen["token_requests"] = TOKEN_REQUESTS
    seen["sdk_passed_none_code_path"] = bool(NONE_CODE_PATHS)
    seen["blocked"] = BLOCKED
    return seen


if __name__ == "__main__":
    image, config_json, model_folder, work, name = sys.argv[1:6]
    result = run(image, json.loads(config_json), os.path.abspath(model_folder), work, name)
    sys.stdout.flush()
    print(json.dumps(result, default=lambda v: base64.b64encode(v).decode()))
