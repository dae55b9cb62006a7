"""The router image runs the built-in router as the rendered Kubernetes Deployment does:
its command and arguments, a mounted manifest, uid 10001, a read-only root filesystem,
no capabilities. Host networking on 127.0.0.1 so it reaches a model server there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from router_support import JSON_BODY, manifest, model_entry, wait_until
from serving_support import free_port

from deployer.router.manifest import Manifest
from deployer_router.render import render

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_router_image_runs_the_rendered_deployment(
    docker: Any, models: Any, tmp_path: Path
) -> None:
    from docker_support import BASE_IMAGE

    from deployer_router.image import ensure_router_image

    tag = ensure_router_image(docker, BASE_IMAGE, "linux/amd64", "3.11", lambda line: None)
    config_of_image = docker.api.inspect_image(tag)["Config"]
    assert config_of_image["Entrypoint"][-2:] == ["-m", "deployer_router"]  # the router itself
    assert config_of_image["Cmd"][0] == "serve"
    data = manifest(backends=[model_entry(models[0]), model_entry(models[1])])
    rendered = render(Manifest.model_validate(data), "kubernetes", image=tag)
    config_map, deployment = list(yaml.safe_load_all(rendered.text))[:2]
    container_spec = deployment["spec"]["template"]["spec"]["containers"][0]
    config = tmp_path / "config"
    config.mkdir()
    (config / "router.yaml").write_text(config_map["data"]["router.yaml"])
    config.chmod(0o755)
    (config / "router.yaml").chmod(0o644)
    port = free_port()
    args = [a if a != "0.0.0.0" else "127.0.0.1" for a in container_spec["args"]]
    args[args.index("--port") + 1] = str(port)
    security = container_spec["securityContext"]
    container = docker.containers.run(
        tag,
        entrypoint=container_spec["command"],
        command=args,
        user="10001:10001",
        read_only=security["readOnlyRootFilesystem"],
        cap_drop=security["capabilities"]["drop"],
        security_opt=["no-new-privileges"],
        tmpfs={"/tmp": "size=16m"},
        volumes={str(config): {"bind": "/etc/deployer", "mode": "ro"}},
        network_mode="host",
        detach=True,
        labels={"dev.deployer.test": "router-image"},
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                return httpx.get(url + "/-/router/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, timeout=60, message="router in the image ready")
        with httpx.Client(timeout=10) as client:
            answers = [
                client.post(
                    url + "/invocations",
                    content=JSON_BODY,
                    headers={"content-type": "application/json"},
                )
                for _ in range(6)
            ]
        assert {a.status_code for a in answers} == {200}
        assert {a.headers["x-deployer-backend"] for a in answers} == {"m0", "m1"}
        assert httpx.get(url + "/-/router/health").json()["ok"] is True
        container.stop(timeout=20)
        assert container.wait(timeout=30)["StatusCode"] == 0
    finally:
        logs = container.logs().decode(errors="replace")
        container.remove(force=True)
    assert '"event":"router listening"' in logs, logs
