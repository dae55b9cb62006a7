"""What a built model image carries and how it runs: its non-root user, no setuid files,
no package manager, a HEALTHCHECK that turns healthy, and only the declared code of a
python-flavour project (no .git, .env or .deployer journal; a link leaving it refused)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from docker_support import free_port, remove_repository
from typer.testing import CliRunner

from deployer import Project
from deployer.image.build import Image
from deployer.image.containers import RunningContainer, run_container

pytestmark = pytest.mark.docker

NAME = "image-contents-test"
USER = "10001:10001"
MODULE = "contents_predictor"  # unique: ``build`` loads it in this process
HEALTH_GUARD_S = 300  # a hang guard only: the test waits for the event, not for a time
PREDICTOR = """
class Predictor:
    signature = {"width": 2, "outputs": ["predict"]}

    def predict(self, rows, parameters):
        return rows.sum(axis=1)
"""


def _write_project(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{MODULE}.py").write_text(PREDICTOR)
    (folder / "deployer.yaml").write_text(
        f"name: {NAME}\nmodel:\n  flavor: python\n  predictor: {MODULE}:Predictor\n"
        f"targets:\n  local:\n    provider: local\n    port: {free_port()}\n"
    )
    return folder / "deployer.yaml"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A python-flavour project with the default ``code: [.]`` and things that must stay
    out of the image: a git repository, .env files and a .deployer journal."""
    folder = tmp_path_factory.mktemp("contents")
    config = _write_project(folder)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], cwd=folder, check=True)
    (folder / ".env").write_text("API_KEY=secret\n")
    (folder / ".env.local").write_text("API_KEY=secret\n")
    (folder / ".deployer" / "journal").mkdir(parents=True)
    (folder / ".deployer" / "journal" / "r1.json").write_text("{}\n")
    (folder / "helpers").mkdir()
    (folder / "helpers" / "util.py").write_text("Z = 3\n")
    return Project.load(config)


@pytest.fixture(scope="module")
def image(docker: Any, project: Project) -> Iterator[Image]:
    built = project.build()
    sys.modules.pop(MODULE, None)
    yield built
    remove_repository(docker, NAME)


@pytest.fixture(scope="module")
def container(docker: Any, image: Image) -> Iterator[RunningContainer]:
    running = run_container(docker, image.ref, name=f"deployer-contents-{free_port()}")
    yield running
    running.remove()


def _exec(running: RunningContainer, command: str, user: str = "") -> tuple[int, str]:
    result = running.container.exec_run(["sh", "-c", command], user=user)
    return result.exit_code, result.output.decode().strip()


def _health_status(docker: Any, running: RunningContainer) -> str:
    """Wait for the container's next health_status event (or the guard), return it."""
    since = int(time.time()) - 60  # the event may have come before we listen
    events = docker.events(
        since=since,
        until=since + 60 + HEALTH_GUARD_S,
        filters={"container": running.container.id},
        decode=True,
    )
    try:
        for event in events:
            status = str(event.get("status") or event.get("Action") or "")
            if status.startswith("health_status"):
                return status.partition(":")[2].strip()
            if status in ("die", "oom"):
                return status
    finally:
        events.close()
    return "no health_status event"


def test_image_declares_the_non_root_user_and_a_healthcheck(docker: Any, image: Image) -> None:
    config = docker.api.inspect_image(image.id)["Config"]
    assert config["User"] == USER
    test = config["Healthcheck"]["Test"]
    assert test[0] == "CMD"
    assert "/opt/deployer/healthcheck.py" in test
    assert "/ping" in test
    assert "AIP_HTTP_PORT" in test and "SAGEMAKER_BIND_TO_PORT" in test


def test_container_becomes_healthy_and_answers_as_that_user(
    docker: Any, container: RunningContainer
) -> None:
    assert _health_status(docker, container) == "healthy"
    assert httpx.get(f"{container.url}/ping", timeout=10).status_code == 200
    answer = httpx.post(
        f"{container.url}/invocations",
        content=b"1,2\n3,4\n",
        headers={"content-type": "text/csv", "accept": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert _exec(container, "id -u") == (0, "10001")
    code, status = _exec(container, "grep '^Uid:' /proc/1/status")
    assert code == 0 and status.split()[1:] == ["10001"] * 4  # the server itself


def test_no_setuid_or_setgid_file_and_no_package_manager(container: RunningContainer) -> None:
    assert _exec(container, "find / -perm /6000 2>/dev/null", user="0")[1] == ""
    _, found = _exec(
        container,
        "command -v apt apt-get apt-cache dpkg dpkg-query dpkg-deb debconf;"
        " ls -d /var/lib/dpkg /var/lib/apt /etc/apt /usr/lib/apt 2>/dev/null",
    )
    assert found == ""


def test_the_user_can_write_only_temporary_folders(container: RunningContainer) -> None:
    _, writable = _exec(container, "find / -xdev -writable \\( -type f -o -type d \\) 2>/dev/null")
    assert set(writable.split()) <= {"/tmp", "/var/tmp", "/run/lock", "/var/lock", "/dev/shm"}
    assert "/tmp" in writable.split()
    assert _exec(container, f"test -r /opt/deployer/code/0/{MODULE}.py")[0] == 0
    assert _exec(container, "touch /opt/deployer/serving.json")[0] != 0


def test_python_flavour_ships_only_declared_code(container: RunningContainer) -> None:
    code, listing = _exec(container, "cd /opt/deployer/code/0 && find . -mindepth 1")
    assert code == 0
    assert set(listing.split()) == {
        "./deployer.yaml",
        "./helpers",
        "./helpers/util.py",
        f"./{MODULE}.py",
    }


def test_a_symlink_leaving_the_project_stops_the_build(tmp_path: Path) -> None:
    """Exit 2 naming the link and its target, before Docker is asked for anything."""
    from deployer.cli import app

    config = _write_project(tmp_path / "project")
    outside = tmp_path / "outside" / "credentials"
    outside.parent.mkdir()
    outside.write_text("aws_secret_access_key = x\n")
    link = tmp_path / "project" / "creds"
    link.symlink_to(outside)
    result = CliRunner().invoke(app, ["build", "-f", str(config)])
    assert result.exit_code == 2, result.output
    assert str(link) in result.output
    assert str(outside) in result.output
    assert "Traceback" not in result.output
