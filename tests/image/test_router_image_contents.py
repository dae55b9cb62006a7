"""The router images carry what the model image does not need either: they run as uid
10001, hold no setuid/setgid file and no package manager, and declare a HEALTHCHECK on the
router's readiness route."""

from __future__ import annotations

from typing import Any

import pytest
from docker_support import BASE_IMAGE

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def router_tag(docker: Any) -> str:
    from deployer_router.image import ensure_router_image

    return ensure_router_image(docker, BASE_IMAGE, "linux/amd64", "3.11", lambda line: None)


def _run(docker: Any, tag: str, command: str, user: str | None = None) -> str:
    output = docker.containers.run(
        tag, entrypoint=["sh", "-c"], command=[command], user=user, network_mode="none", remove=True
    )
    return str(output.decode()).strip()


def test_router_image_declares_its_user_and_healthcheck(docker: Any, router_tag: str) -> None:
    config = docker.api.inspect_image(router_tag)["Config"]
    assert config["User"] == "10001:10001"
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert "/-/router/ready" in config["Healthcheck"]["Test"]
    assert _run(docker, router_tag, "id -u") == "10001"
    assert _run(docker, router_tag, "test -r /opt/deployer/healthcheck.py && echo ok") == "ok"


def test_router_image_has_no_setuid_file_and_no_package_manager(
    docker: Any, router_tag: str
) -> None:
    assert _run(docker, router_tag, "find / -perm /6000 2>/dev/null || true", user="0") == ""
    found = _run(
        docker,
        router_tag,
        "command -v apt apt-get dpkg dpkg-query; ls -d /var/lib/dpkg /etc/apt 2>/dev/null; true",
    )
    assert found == ""
