"""With Docker: ``captured()`` of a target capturing to a PersistentVolumeClaim runs the
REAL image's ``deployer.serving.capture_dump`` in the reader Job's pod (pulled from a real
registry, as the pod's non-root user, read-only root, the claim mounted read-only, no
network) over files the image's writer format put in the claim."""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from docker_support import LocalRegistry
from k8s_support import ADMIN_TOKEN, quiet
from k8sfake import FakeKube

from deployer.providers import ProjectInfo, Release, Strategy, Target, monitoring
from deployer.serving.capture_record import build_line
from deployer.serving.capture_sinks import FolderSink
from deployer_kubernetes.provider import KubernetesProvider

pytestmark = pytest.mark.docker
SPEC = monitoring.CaptureSpec(1.0)


def test_the_real_images_dump_reads_the_claim(
    docker_fake: FakeKube,
    registry: LocalRegistry,
    iris_image: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("K8S_PVC_REGISTRY_USER", registry.username)
    monkeypatch.setenv("K8S_PVC_REGISTRY_TOKEN", registry.password)
    options = {
        "provider": "kubernetes",
        "kubeconfig": str(docker_fake.kubeconfig(tmp_path / "kubeconfig", token=ADMIN_TOKEN)),
        "context": "fake",
        "registry": f"{registry.host}/iris",
        "registry_username_env": "K8S_PVC_REGISTRY_USER",
        "registry_password_env": "K8S_PVC_REGISTRY_TOKEN",
        "replicas": 1,
        "capture_pvc": "captures",
        "poll_interval": 0.1,
    }
    provider = KubernetesProvider(Target("k8s", "kubernetes", options), ProjectInfo("iris"))
    ref = provider.publish(iris_image, quiet)
    release = dataclasses.replace(
        Release("iris", iris_image, [[5.1, 3.5, 1.4, 0.2]], {}), capture=SPEC
    )
    deployment = provider.deploy(release, ref, Strategy(), quiet)
    assert provider.wait(deployment, 300, quiet).healthy
    claim = tmp_path / "claim"
    claim.mkdir()
    os.chmod(claim, 0o755)  # the pod runs as uid 10001: it reads, never writes
    now = datetime.now(timezone.utc)
    sink = FolderSink(claim, max_file_bytes=300, max_total_bytes=1_000_000)
    for n in range(3):
        rows = np.array([[5.1 + n, 3.5, 1.4, 0.2]])
        line = build_line(SPEC, "v1", f"r{n}", now.timestamp(), rows, np.array([n]), _columns)
        sink.write([line])
    sink.close()
    for path in claim.iterdir():
        os.chmod(path, 0o644)
    docker_fake.add_claim("captures", claim)
    records = list(provider.captured(since=now - timedelta(minutes=1)))
    assert [r.request_id for r in records] == ["r0", "r1", "r2"]
    assert records[2].rows == [{"f0": 7.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}]
    assert records[2].predictions == [2] and provider.captured_skipped == 0
    assert docker_fake.objects("batch", "v1", "jobs", "default") == []


def _columns(width: int) -> list[str]:
    return [f"f{i}" for i in range(width)]
