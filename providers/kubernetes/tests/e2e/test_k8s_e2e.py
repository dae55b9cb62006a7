"""End to end against a real cluster: push, status, predict, a canary update, rollback and
destroy. Runs whenever DEPLOYER_E2E_KUBECONFIG names a kubeconfig; skipped otherwise.

Environment:
- DEPLOYER_E2E_KUBECONFIG  kubeconfig of the cluster (required)
- DEPLOYER_E2E_CONTEXT     its context (default: the current one)
- DEPLOYER_E2E_NAMESPACE   namespace to use, created if missing (default: deployer-e2e)
- DEPLOYER_E2E_REGISTRY    repository the cluster pulls from, e.g. localhost:5001/iris
- DEPLOYER_E2E_REGISTRY_USER_ENV / _PASSWORD_ENV  names of variables with push credentials

providers/kubernetes/examples/kind-e2e.yml runs it on GitHub Actions with kind and a
local registry.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deployer import Project

KUBECONFIG = os.environ.get("DEPLOYER_E2E_KUBECONFIG", "")
pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(
        not KUBECONFIG,
        reason="DEPLOYER_E2E_KUBECONFIG is not set: the Kubernetes e2e suite needs a real "
        "cluster (see providers/kubernetes/examples/kind-e2e.yml)",
    ),
]
NAMESPACE = os.environ.get("DEPLOYER_E2E_NAMESPACE", "deployer-e2e")
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def _target_yaml() -> str:
    lines = [
        "provider: kubernetes",
        f"kubeconfig: {KUBECONFIG}",
        f"namespace: {NAMESPACE}",
        "replicas: 1",
        "poll_interval: 1",
        "progress_deadline_seconds: 300",
        "resources: {requests: {cpu: 100m, memory: 256Mi}, limits: {memory: 1Gi}}",
    ]
    if os.environ.get("DEPLOYER_E2E_CONTEXT"):
        lines.append(f"context: {os.environ['DEPLOYER_E2E_CONTEXT']}")
    if os.environ.get("DEPLOYER_E2E_REGISTRY"):
        lines.append(f"registry: {os.environ['DEPLOYER_E2E_REGISTRY']}")
    if os.environ.get("DEPLOYER_E2E_REGISTRY_USER_ENV"):
        lines.append(f"registry_username_env: {os.environ['DEPLOYER_E2E_REGISTRY_USER_ENV']}")
        lines.append(f"registry_password_env: {os.environ['DEPLOYER_E2E_REGISTRY_PASSWORD_ENV']}")
    return "".join(f"    {line}\n" for line in lines)


def _ensure_namespace() -> None:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    api = config.new_client_from_config(
        config_file=KUBECONFIG, context=os.environ.get("DEPLOYER_E2E_CONTEXT") or None
    )
    core = client.CoreV1Api(api)
    try:
        core.read_namespace(NAMESPACE)
    except ApiException as exc:
        if exc.status != 404:
            raise
        core.create_namespace({"metadata": {"name": NAMESPACE}})


@pytest.fixture(scope="module")
def project(docker: Any, tmp_path_factory: pytest.TempPathFactory, iris_model_file: Path) -> Any:
    _ensure_namespace()
    folder = tmp_path_factory.mktemp("k8s-e2e")
    shutil.copy(iris_model_file, folder / "model.joblib")
    (folder / "deployer.yaml").write_text(
        "name: iris-e2e\nmodel:\n  path: model.joblib\ntargets:\n  k8s:\n" + _target_yaml()
    )
    loaded = Project.load(folder / "deployer.yaml")
    yield loaded
    loaded.destroy(["k8s"])


def _retrain(project: Project) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(C=0.05, max_iter=500).fit(features, labels)
    joblib.dump(model, project.model_path)


def _predict(project: Project) -> list[Any]:
    answer = project.predict("k8s", json.dumps(ROWS).encode())
    assert answer.status == 200, answer.body
    return list(json.loads(answer.body)["predictions"])


def test_push_status_rollback_destroy(project: Project) -> None:
    first = project.push(["k8s"], timeout=600, journal_dir=None)
    assert first.ok, first.targets[0].error
    v1 = first.version
    status = project.status(["k8s"])[0]
    assert status.healthy and status.version == v1
    assert _predict(project) == project.load_model().predict(np.array(ROWS), "predict", {}).tolist()

    again = project.push(["k8s"], timeout=600, journal_dir=None)
    assert again.ok and not again.targets[0].changed

    _retrain(project)
    second = project.push(["k8s"], strategy="canary:50", timeout=900, journal_dir=None)
    assert second.ok, second.targets[0].error
    assert second.version != v1
    assert project.status(["k8s"])[0].version == second.version

    (rolled,) = project.rollback(["k8s"])
    assert rolled.version == v1
    status = project.status(["k8s"])[0]
    assert status.healthy and status.version == v1

    removed = project.destroy(["k8s"])["k8s"]
    assert "deployment/iris-e2e-k8s" in removed and "service/iris-e2e-k8s" in removed
    assert project.status(["k8s"])[0].state == "absent"
    assert project.destroy(["k8s"])["k8s"] == []
