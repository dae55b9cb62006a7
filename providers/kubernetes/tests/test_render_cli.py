"""`deployer render --to k8s` (the core CLI) renders this provider's manifests, no cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml


def test_render_to_stdout_and_to_a_folder(tmp_path: Path) -> None:
    (tmp_path / "model.joblib").write_bytes(b"")  # rendering never loads the model
    (tmp_path / "deployer.yaml").write_text(
        "name: iris\nmodel: {path: model.joblib}\ntargets:\n"
        "  k8s: {provider: kubernetes, namespace: models, autoscaling: {min: 2, max: 4}}\n"
    )
    command = [sys.executable, "-m", "deployer", "render", "--to", "k8s", "--image", "reg/iris:1.2"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    objects = [o for o in yaml.safe_load_all(result.stdout) if o]
    kinds = [o["kind"] for o in objects]
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= set(kinds)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert deployment["metadata"]["namespace"] == "models"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "reg/iris:1.2"
    assert "replicas" not in deployment["spec"]  # the HPA owns scaling
    result = subprocess.run(
        [*command, "--out", "manifests"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "manifests").glob("*.yaml"))) == len(objects)
