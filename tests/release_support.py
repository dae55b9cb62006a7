"""A provider whose "cloud" is a list of versions per target, registered as the plugin
``fakecloud``, and a project that uses it without Docker: what the release tests (audit
trail, history, gates) push, roll back and destroy through the real CLI and API.

``FakeCloud.clouds[target]`` is that target's state: the versions deployed (with the
annotations each release carried) and every call made, so a test can assert that
nothing was deployed. ``fake_project(folder)`` writes deployer.yaml (targets ``a`` and
``b``), a model file and deployer.lock, and returns the path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import orjson

from deployer.errors import DeployerError
from deployer.image.build import Image
from deployer.providers import (
    Backend,
    Change,
    Deployment,
    Invocation,
    Plan,
    ProjectInfo,
    Release,
    Status,
    Strategy,
    Target,
)

MODEL_BYTES = b"a model, as far as the release tests are concerned"
MODEL_SHA = hashlib.sha256(MODEL_BYTES).hexdigest()


@dataclass
class Cloud:
    """One target's state: deployed versions (newest last) with their annotations."""

    versions: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    strategies: list[Strategy] = field(default_factory=list)  # what each deploy was given
    fail_deploy: bool = False
    fail_rollback: bool = False
    fail_destroy: bool = False

    @property
    def live(self) -> str | None:
        return self.versions[-1][0] if self.versions else None


class FakeCloud:
    """The ``fakecloud`` provider: every instance of a target shares its ``Cloud``."""

    name: ClassVar[str] = "fakecloud"
    managed: ClassVar[bool] = False
    default_router_auth: ClassVar[str | None] = None
    clouds: ClassVar[dict[str, Cloud]] = {}

    def __init__(self, target: Target, project: ProjectInfo) -> None:
        self.target = target.name
        self.cloud = self.clouds.setdefault(target.name, Cloud())

    def plan(self, release: Release, strategy: Strategy | None = None) -> Plan:
        self.cloud.calls.append("plan")
        action = "keep" if self.cloud.live == release.version else "update"
        return Plan(self.target, [Change(action, "endpoint")])  # type: ignore[arg-type]

    def publish(self, image: Image, progress: Any) -> str:
        self.cloud.calls.append("publish")
        return f"fake/{image.ref}"

    def deploy(self, release: Release, ref: str, strategy: Strategy, progress: Any) -> Deployment:
        self.cloud.calls.append("deploy")
        self.cloud.strategies.append(strategy)
        previous = self.cloud.live
        if previous == release.version:
            return Deployment(self.target, release.version, previous, changed=False)
        self.cloud.versions.append((release.version, dict(release.annotations)))
        return Deployment(self.target, release.version, previous, changed=True)

    def wait(self, deployment: Deployment, timeout: float, progress: Any) -> Status:
        if self.cloud.fail_deploy:
            return Status(self.target, "failed", self.cloud.live, reason="it broke on purpose")
        return self.status()

    def status(self) -> Status:
        self.cloud.calls.append("status")
        if not self.cloud.versions:
            return Status(self.target, "absent")
        version, annotations = self.cloud.versions[-1]
        details = {"annotations": annotations}
        return Status(
            self.target, "healthy", version, f"http://127.0.0.1:9/{self.target}", None, details
        )

    def invoke(self, body: bytes, content_type: str, accept: str | None = None) -> Invocation:
        rows = orjson.loads(body)
        return Invocation(200, orjson.dumps({"predictions": [0] * len(rows)}), "application/json")

    def rollback(self, progress: Any) -> Deployment:
        self.cloud.calls.append("rollback")
        if self.cloud.fail_rollback:
            raise DeployerError(f"{self.target}: the rollback was refused")
        current = self.cloud.versions.pop()[0]
        return Deployment(self.target, self.cloud.live or "", current, changed=True)

    def destroy(self, progress: Any) -> list[str]:
        self.cloud.calls.append("destroy")
        if self.cloud.fail_destroy:
            raise DeployerError(f"{self.target}: the endpoint is locked")
        removed = ["endpoint"] if self.cloud.versions else []
        self.cloud.versions.clear()
        return removed

    def route(self) -> Backend:
        return Backend(self.target, self.name, f"http://127.0.0.1:9/{self.target}")


def entry_points() -> dict[str, metadata.EntryPoint]:
    """What ``deployer.providers.available_providers`` returns in these tests."""
    entry = metadata.EntryPoint("fakecloud", "release_support:FakeCloud", "deployer.providers")
    return {"fakecloud": entry}


def release_of(seed: str, model_sha: str = MODEL_SHA) -> Release:
    """A release of a made-up image whose version derives from ``seed``."""
    image_id = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
    image = Image(f"iris:{seed}", image_id, 1, {"dev.deployer.model.sha256": model_sha})
    return Release("iris", image, [[0, 0], [0, 0]], {})


def fake_project(
    folder: Path,
    gates: list[str] | None = None,
    metrics: Mapping[str, float] | None = None,
    evaluated_sha: str = MODEL_SHA,
) -> Path:
    """deployer.yaml with targets a and b on fakecloud, the model file, and deployer.lock
    with an evaluation of ``metrics`` (none when None) for the model ``evaluated_sha``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.joblib").write_bytes(MODEL_BYTES)
    lines = [
        "name: iris",
        "model: {path: model.joblib, flavor: sklearn}",
        "targets:",
        "  a: {provider: fakecloud}",
        "  b: {provider: fakecloud}",
    ]
    if gates:
        lines += ["release:", "  gates:", *(f"    - {json.dumps(g)}" for g in gates)]
    (folder / "deployer.yaml").write_text("\n".join(lines) + "\n")
    lock: dict[str, Any] = {
        "model_path": "model.joblib",
        "model_sha256": MODEL_SHA,
        "flavor": "sklearn",
        "signature": {},
    }
    if metrics is not None:
        lock["evaluation"] = {"model_sha256": evaluated_sha, "metrics": dict(metrics)}
    (folder / "deployer.lock").write_text(json.dumps(lock))
    return folder / "deployer.yaml"


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str


def cli(*args: str) -> Run:
    """``deployer ARGS`` in this process (so the fakes apply)."""
    from typer.testing import CliRunner

    from deployer.cli import app

    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})
    return Run(result.exit_code, result.stdout, result.stderr)
