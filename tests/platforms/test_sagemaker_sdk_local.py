"""The built image as the SageMaker Python SDK v2's local mode runs it.

``sagemaker.model.Model(...).deploy(instance_type="local")`` with a ``LocalSession``
starts the image through docker-compose (``command: serve``, the SDK's model data
mounted at /opt/ml/model), then predictions go through the SDK's ``Predictor`` with its
JSON, CSV and NPY serializers and deserializers. The SDK never looks at an HTTP status,
so the statuses are read through its local runtime client and with plain HTTP on the
published port. The driver, tests/clients/sagemaker_local.py, runs in its own venv
(tests/clients_support.py) and prints what it saw; the expected predictions come from
the same model file, in this process.

What the SDK (2.257) does, read in sagemaker/local/image.py and checked here:

- ports: the compose service publishes ``"%s:8080" % local.serving_port`` (8080 by
  default) on every interface, with no setting for the host address; the driver passes
  a ``local.serving_port`` that formats as ``127.0.0.1:PORT`` (see ``LoopbackPort``), on
  a free port, and the test checks the container's binding is 127.0.0.1 only.
- network: a bridge network ``sagemaker-local`` that compose creates and nobody removes.
- teardown: ``delete_endpoint`` sends SIGTERM to ``docker-compose up``, which stops the
  container but does not remove it; the test removes the stopped container and the
  network (tests/leftovers.py fails the run on any left behind).
- credentials: the boto session's access key and secret are copied into the container's
  environment (dummy values here); no AWS call is made: telemetry is opted out, the
  instance metadata service is disabled, and every non-loopback connection the driver
  process attempts is refused and reported.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from clients_support import client_python, run_client
from docker_support import free_port

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]
NETWORK = "sagemaker-local"  # the name the SDK's compose file gives its network
WORKING_DIR = "com.docker.compose.project.working_dir"


def model_data(folder: Path) -> Path:
    """The SDK's model data: a tarball with an unrelated file (the image keeps its own
    model under /opt/deployer/model). The SDK extracts it next to itself and mounts the
    folder at /opt/ml/model, so it gets a folder of its own."""
    folder.mkdir()
    readme = folder / "README"
    readme.write_text("not a model: the image serves the one built into it\n")
    tarball = folder / "model.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(readme, arcname="README")
    readme.unlink()
    return tarball


def remove_compose_leftovers(docker: Any, root: Path, networks_before: set[str]) -> list[str]:
    """Remove the containers of compose projects under ``root`` and the SDK's network if
    this test created it; what was removed."""
    removed = []
    for container in docker.containers.list(all=True):
        if container.labels.get(WORKING_DIR, "").startswith(str(root)):
            container.remove(force=True)
            removed.append(f"container {container.name}")
    if NETWORK not in networks_before:
        for network in docker.networks.list(names=[NETWORK]):
            network.reload()
            if not network.containers:
                network.remove()
                removed.append(f"network {network.name}")
    return removed


@pytest.fixture(scope="module")
def seen(docker: Any, iris_image: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """What the driver saw: one deploy, the predictions, the teardown."""
    client_python("sagemaker")  # build (or find) the SDK's venv first: it may skip
    folder = tmp_path_factory.mktemp("sagemaker-local")
    tarball = model_data(folder / "model-data")
    root = folder / "containers"  # the SDK's local.container_root
    home = folder / "home"  # no ~/.sagemaker or ~/.aws of the user's
    root.mkdir()
    home.mkdir()
    env = sdk_environment(home)
    networks_before = {network.name for network in docker.networks.list()}
    result: dict[str, Any] = {}
    try:
        result = run_client(
            "sagemaker",
            "sagemaker_local.py",
            iris_image.ref,
            str(tarball),
            str(free_port()),
            str(root),
            env=env,
            timeout=900,
        )
    finally:
        result["removed_by_test"] = remove_compose_leftovers(docker, root, networks_before)
        result["network_existed_before"] = NETWORK in networks_before
    if "error" in result:
        pytest.fail(f"SageMaker local mode failed:\n{result['error']}")
    yield result


def sdk_environment(home: Path) -> dict[str, str]:
    """Dummy credentials and region, no user config, no instance metadata service.

    Without credentials in the environment, ``import sagemaker`` alone (it builds a
    default JumpStart session) would walk boto's credential chain to the EC2 instance
    metadata service, 169.254.169.254."""
    return {
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": "AKIADEPLOYERTEST0000",
        "AWS_SECRET_ACCESS_KEY": "dummy-secret-for-local-mode",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }


@pytest.fixture(scope="module")
def expected(iris_project: Any, seen: Any) -> dict[str, np.ndarray]:
    model = joblib.load(iris_project.model_path)
    rows = np.array(seen["rows"], dtype=np.float64)
    return {"predict": model.predict(rows), "predict_proba": model.predict_proba(rows)}


def test_deploys_offline_on_loopback(seen: Any, iris_image: Any) -> None:
    assert seen["sdk_version"].startswith("2.")
    assert seen["blocked"] == []  # not one connection beyond 127.0.0.1 (and the engine)
    assert (seen["deploy_returned"], seen["endpoint_status"]) == ("Predictor", "InService")
    (container,) = seen["containers"]
    port = seen["compose"]["service"]["ports"][0].split(":")[1]
    assert seen["compose"]["service"]["ports"] == [f"127.0.0.1:{port}:8080"]
    assert container["port_bindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": port}]}
    assert container["image"] == iris_image.ref
    assert container["command"] == ["serve"]
    assert container["networks"] == [NETWORK]
    assert "/opt/ml/model" in container["mounts"]
    assert container["aws_env"] == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    # the SDK's model data is noticed, and the baked model serves (predictions below)
    assert any(
        "SageMaker's model data at /opt/ml/model" in n for n in container["artifact_notices"]
    )


def test_predictions_through_the_sdk_serializers(seen: Any, expected: Any) -> None:
    predictions = seen["predictions"]
    labels, probabilities = expected["predict"], expected["predict_proba"]
    assert predictions["content_types"] == {
        "json": ["application/json", ["application/json"]],
        "csv": ["text/csv", ["text/csv"]],
        "npy": ["application/x-npy", ["application/x-npy"]],
    }
    assert predictions["json"] == {"predictions": labels.tolist()}
    np.testing.assert_allclose(predictions["json_proba"]["predictions"], probabilities)
    assert predictions["csv"] == [[str(label)] for label in labels]
    np.testing.assert_allclose(np.array(predictions["csv_proba"], dtype=float), probabilities)
    assert predictions["npy"] == {"dtype": "int64", "data": labels.tolist()}
    assert predictions["npy_proba"]["dtype"] == "float64"
    np.testing.assert_allclose(predictions["npy_proba"]["data"], probabilities)


def test_statuses_the_sdk_does_not_check(seen: Any, expected: Any) -> None:
    # Predictor.predict hands a 400's body to the deserializer as if it were a prediction
    assert "expected 4 features per row" in seen["predictions"]["json_bad_request"]["error"]
    runtime = seen["runtime_client"]
    assert runtime["ok"]["status"] == 200
    assert (runtime["wrong_width"]["status"], runtime["unsupported_type"]["status"]) == (400, 415)
    http = seen["http"]
    assert (http["ping"], http["json"]["status"]) == (200, 200)
    assert f'"predictions":{expected["predict"].tolist()}'.replace(" ", "") in http["json"]["body"]
    assert http["wrong_width"]["status"] == 400
    assert http["malformed_json"]["status"] == 400
    assert http["unsupported_type"]["status"] == 415
    assert http["unacceptable_accept"]["status"] == 406


def test_teardown_leaves_nothing(seen: Any) -> None:
    assert seen["deleted"] is True
    assert seen["stray_compose_pids"] == []  # delete_endpoint ended docker-compose itself
    after = seen["after_delete"]
    # the SDK stops its container but leaves it, and its network, for the test to remove
    assert all(c["status"] == "exited" for c in after["containers"]), after
    assert after["container_root"] == []  # the SDK deletes its compose folder
    removed = seen["removed_by_test"]
    assert sorted(r for r in removed if r.startswith("container")) == [
        f"container {c['name']}" for c in after["containers"]
    ]
    assert after["networks"] == [NETWORK]
    assert (f"network {NETWORK}" in removed) is not seen["network_existed_before"]
