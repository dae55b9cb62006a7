"""The built image as Vertex AI's SDK serves it locally: LocalModel / LocalEndpoint.

``LocalModel(serving_container_image_uri=..., ...).deploy_to_local_endpoint(...)``
runs the image through the docker SDK with ``AIP_HTTP_PORT``, ``AIP_HEALTH_ROUTE``,
``AIP_PREDICT_ROUTE`` and ``AIP_STORAGE_URI`` set from the model's container spec. The
spec here names a container port and Vertex-style routes that are none of the SDK's
defaults (8080, ``/predict``, ``/health``) nor the image's (``/vertex/...``), and an
``artifact_uri`` folder whose "model" is not one. The driver,
tests/clients/vertex_local.py, runs in its own venv (tests/clients_support.py) and
prints what it saw; the expected predictions come from the same model file, here.

What the SDK (google-cloud-aiplatform 2.7) does, read in
google/cloud/aiplatform/prediction/local_endpoint.py and docker_utils/run.py, and
checked here:

- ports: ``containers.run(ports={AIP_HTTP_PORT: host_port})``, every interface, with
  no setting for the host address; the driver passes a ``host_port`` that the docker
  SDK reads as ``("127.0.0.1", PORT)`` and the SDK's URLs as PORT (``LoopbackHostPort``),
  on a free port, and the test checks the container's binding is 127.0.0.1 only.
- artifact: each file under ``artifact_uri`` is bind-mounted under
  /tmp_cpr_local_model, which ``AIP_STORAGE_URI`` names.
- credentials: ``serve()`` reads the project from ``aiplatform.init`` (without it,
  ``google.auth.default()``, which probes the GCE metadata server, and with
  ``GOOGLE_CLOUD_PROJECT`` set a Resource Manager lookup) and sets
  ``GOOGLE_CLOUD_PROJECT`` in the container; a key is mounted only if
  ``credential_path`` or ``GOOGLE_APPLICATION_CREDENTIALS`` names one (neither here).
  The driver inits with a project and anonymous credentials; ``NO_GCE_CHECK`` and an
  empty HOME and gcloud config keep any other path offline too.
- teardown: ``stop()`` (and leaving the ``with`` block) stops the container with
  SIGTERM but never removes it: the test removes it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from clients_support import client_python, run_client
from docker_support import free_port

from deployer.image.context import MODEL_DIR

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]
PREDICT_ROUTE = "/v1/endpoints/4242/deployedModels/777:predict"
HEALTH_ROUTE = "/v1/endpoints/4242/deployedModels/777/healthz"
CONTAINER_PORT = 18532
MOUNTED_ARTIFACT = "/tmp_cpr_local_model"  # the SDK's folder for a local artifact_uri


def artifact_folder(folder: Path) -> Path:
    """The endpoint's ``artifact_uri``: a ``model.joblib`` that is not a model, so a
    server that loaded it would fail to start."""
    folder.mkdir()
    (folder / "model.joblib").write_text("not a model: the image serves its own\n")
    (folder / "README").write_text("a Vertex artifact the image does not use\n")
    return folder


def sdk_environment(home: Path) -> dict[str, str]:
    """No user configuration or credentials, and no GCE metadata server probe."""
    return {
        "HOME": str(home),
        "CLOUDSDK_CONFIG": str(home / "no-gcloud-config"),
        "GOOGLE_APPLICATION_CREDENTIALS": "",  # empty: the SDK mounts no key
        "GOOGLE_CLOUD_PROJECT": "",
        "NO_GCE_CHECK": "True",
    }


def remove_containers(docker: Any, image: str, before: set[str], known: str | None) -> list[str]:
    """Remove the container the driver named, and any other of ``image`` started since
    ``before`` (if the driver failed before naming it); what was removed."""
    ids = {c.id for c in docker.containers.list(all=True, filters={"ancestor": image})} - before
    if known:
        ids.add(known)
    removed = []
    for container_id in sorted(ids):
        with contextlib.suppress(Exception):  # already gone is fine
            docker.containers.get(container_id).remove(force=True)
            removed.append(container_id)
    return removed


@pytest.fixture(scope="module")
def seen(docker: Any, iris_image: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """What the driver saw: one local endpoint, its answers, its teardown."""
    client_python("vertexai")  # build (or find) the SDK's venv first: it may skip
    folder = tmp_path_factory.mktemp("vertex-local")
    artifact = artifact_folder(folder / "artifact")
    home = folder / "home"
    home.mkdir()
    before = {c.id for c in docker.containers.list(all=True, filters={"ancestor": iris_image.ref})}
    result: dict[str, Any] = {}
    try:
        result = run_client(
            "vertexai",
            "vertex_local.py",
            iris_image.ref,
            str(artifact),
            str(free_port()),
            env=sdk_environment(home),
            timeout=900,
        )
    finally:
        known = result.get("container_id")
        result["removed_by_test"] = remove_containers(docker, iris_image.ref, before, known)
        result["left_after_removal"] = [
            c.id
            for c in docker.containers.list(all=True, filters={"ancestor": iris_image.ref})
            if c.id not in before
        ]
    if "error" in result:
        logs = "\n".join(result.get("sdk_logs", []))
        pytest.fail(f"Vertex AI LocalEndpoint failed:\n{result['error']}\n{logs}")
    yield result


@pytest.fixture(scope="module")
def expected(iris_project: Any, seen: Any) -> dict[str, np.ndarray]:
    model = joblib.load(iris_project.model_path)
    rows = np.array(seen["rows"], dtype=np.float64)
    return {"predict": model.predict(rows), "predict_proba": model.predict_proba(rows)}


def test_serves_offline_on_loopback_with_the_models_routes(seen: Any, iris_image: Any) -> None:
    assert seen["sdk_version"].split(".")[0] in ("1", "2")
    assert seen["blocked"] == []  # not one connection beyond 127.0.0.1 (and the engine)
    # the SDK took the model's port and routes, not its defaults (8080, /predict, /health)
    assert seen["spec"] == {
        "image_uri": iris_image.ref,
        "predict_route": PREDICT_ROUTE,
        "health_route": HEALTH_ROUTE,
        "ports": [CONTAINER_PORT],
        "command": [],
        "args": [],
    }
    assert seen["endpoint"] == {
        "predict_route": PREDICT_ROUTE,
        "health_route": HEALTH_ROUTE,
        "container_port": CONTAINER_PORT,
    }
    assert seen["running_after_serve"] is True
    container = seen["container"]
    assert container["image"] == iris_image.ref
    assert container["status"] == "running"
    assert container["aip_env"] == {
        "AIP_HTTP_PORT": str(CONTAINER_PORT),
        "AIP_HEALTH_ROUTE": HEALTH_ROUTE,
        "AIP_PREDICT_ROUTE": PREDICT_ROUTE,
        "AIP_STORAGE_URI": MOUNTED_ARTIFACT,
    }
    # a project for the SDK's storage client, and no credentials mounted
    assert container["google_env"] == {"GOOGLE_CLOUD_PROJECT": "deployer-local-test"}
    assert container["mounts"] == [f"{MOUNTED_ARTIFACT}/README", f"{MOUNTED_ARTIFACT}/model.joblib"]
    # the image's own ENTRYPOINT and CMD, as Vertex runs a custom container
    port = container["port_bindings"][f"{CONTAINER_PORT}/tcp"][0]["HostPort"]
    assert container["port_bindings"] == {
        f"{CONTAINER_PORT}/tcp": [{"HostIp": "127.0.0.1", "HostPort": port}]
    }


def test_health_through_the_sdk(seen: Any) -> None:
    assert seen["health"]["status"] == 200
    routes = seen["other_routes"]
    # the SDK's default routes and the image's own (used when AIP_* are unset) are not served
    assert routes["GET /health"] == 404
    assert routes["POST /predict"] == 404
    assert routes["GET /vertex/health"] == 404
    assert routes[f"GET {PREDICT_ROUTE}"] == 405


def test_predictions_through_the_sdk(seen: Any, expected: Any) -> None:
    predictions = seen["predictions"]
    labels = expected["predict"].tolist()
    for key in ("json", "no_content_type", "request_file"):
        answer = predictions[key]
        assert (answer["status"], answer["content_type"]) == (200, "application/json"), key
        assert json.loads(answer["body"]) == {"predictions": labels}, key
    proba = predictions["proba"]
    assert proba["status"] == 200
    np.testing.assert_allclose(
        json.loads(proba["body"])["predictions"], expected["predict_proba"], rtol=1e-12
    )


def test_bad_requests_are_4xx_with_a_message(seen: Any) -> None:
    bad = seen["bad_requests"]
    statuses = {key: answer["status"] for key, answer in bad.items()}
    assert statuses == {
        "wrong_width": 400,
        "malformed_json": 400,
        "no_instances": 400,
        "text_value": 400,
        "unsupported_type": 415,
        "unacceptable_accept": 406,
    }
    assert "expected 4 features per row" in bad["wrong_width"]["body"]
    assert "malformed JSON" in bad["malformed_json"]["body"]
    assert "'instances'" in bad["no_instances"]["body"]
    assert "FP64 numbers" in bad["text_value"]["body"]
    assert "'application/xml'" in bad["unsupported_type"]["body"]
    assert "image/png" in bad["unacceptable_accept"]["body"]


def test_container_logs_through_the_sdk(seen: Any, iris_project: Any) -> None:
    """print_container_logs: the artifact is noticed and ignored, and the server says
    the port AIP_HTTP_PORT named."""
    logs = seen["sdk_logs"]
    baked = f"{MODEL_DIR}/{Path(iris_project.model_path).name}"
    notice = (
        f"not using Vertex AI's artifact at AIP_STORAGE_URI={MOUNTED_ARTIFACT}: "
        f"this image serves the model built into it ({baked})"
    )
    assert notice in logs, logs
    assert any(f"0.0.0.0:{CONTAINER_PORT}" in line for line in logs), logs


def test_teardown_through_the_sdk_leaves_nothing(seen: Any) -> None:
    assert seen["running_after_stop"] is False
    assert "not serving traffic" in seen["predict_after_stop"]
    # stop() sends SIGTERM and the server exits 0; the SDK leaves the stopped container
    assert seen["after_stop"] == {"status": "exited", "exit_code": 0}
    assert seen["removed_by_test"] == [seen["container_id"]]
    assert seen["left_after_removal"] == []
