"""`deployer router image` without a Docker engine: bad input, a missing engine, what a dry
run reports, start-up imports, and the image `render --format kubernetes` recommends.
(The image is built and run in router/tests/test_router_providers_image.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from cli_support import heavy_in, imported_by

from deployer.router.manifest import parse
from deployer_router.image_providers import known_providers, plan, providers_tag
from deployer_router.render import render
from deployer_router.render.kubernetes import default_image

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
CLOUD = """\
name: iris
backends:
  - {name: aws, provider: sagemaker, region: eu-west-1, auth: sigv4,
     url: "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/iris/invocations"}
  - {name: k8s, provider: kubernetes, url: "http://10.0.0.1:8080"}
"""
PLAIN = """\
name: iris
backends:
  - {name: k8s, provider: kubernetes, url: "http://10.0.0.1:8080"}
  - {name: hand, url: "https://iris.example.com", health: {source: control-plane}}
"""


def router_image(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployer", "router", "image", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})},
    )


def test_an_unknown_provider_is_bad_input_naming_the_known_ones() -> None:
    result = router_image("--with", "sagemaker,nope", env=NO_ENGINE)
    assert result.returncode == 2, result.stderr
    assert "unknown provider 'nope'" in result.stderr
    assert "known: azureml, kubernetes, sagemaker, vertex" in result.stderr
    assert known_providers()[:4] == ["azureml", "kubernetes", "sagemaker", "vertex"]


@pytest.mark.parametrize("args", [["--with", "sagemaker"], []])
def test_no_docker_engine_exits_3(args: list[str]) -> None:
    result = router_image(*args, env=NO_ENGINE)
    assert result.returncode == 3, result.stderr
    assert "cannot reach a Docker engine" in result.stderr


def test_help_imports_no_cloud_sdk_and_no_docker() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['deployer', 'router', 'image', '--help']\n"
        "from deployer.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass"
    )
    modules = imported_by(code)
    assert "deployer_router.cli" in modules
    assert heavy_in(modules) == []


def test_the_tag_follows_what_goes_in() -> None:
    tag = providers_tag(["sagemaker"])
    assert tag.startswith("deployer-router:") and "-sagemaker-" in tag
    assert plan(["sagemaker", "sagemaker"]).tag == tag  # names are a set
    assert plan(["sagemaker"], python="3.12").tag != tag
    assert plan(["sagemaker"], base="other-base:1").tag != tag
    assert "-sagemaker-vertex-" in plan(["vertex", "sagemaker"]).tag
    assert tag != default_image()


@pytest.mark.slow
def test_a_dry_run_needs_no_engine_and_lists_what_goes_in() -> None:
    """It builds deployer's wheels on this machine (once per source) and stops there."""
    result = router_image("--with", "sagemaker", "--dry-run", "-o", "json", env=NO_ENGINE)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    assert document["dry_run"] is True and document["built"] is False
    assert document["tag"] == providers_tag(["sagemaker"])
    assert set(document["distributions"]) == {"deployer", "deployer-router", "deployer-aws"}
    names = {r.split("<")[0].split(">")[0].split("=")[0] for r in document["requirements"]}
    assert "boto3" in names and "httptools" in names
    # deployer's own CLI, docker and serving dependencies stay out of a router
    assert not names & {"typer", "rich", "docker", "numpy", "uvicorn", "deployer"}
    assert "deployer-router" not in names


def test_kubernetes_render_recommends_the_image_with_the_providers() -> None:
    rendered = render(parse(CLOUD), "kubernetes")
    tag = providers_tag(["sagemaker"])
    assert f"image: {tag}" in rendered.text
    (note,) = [n for n in rendered.notes if "router image" in n]
    assert "`deployer router image --with sagemaker`" in note and tag in note
    mine = render(parse(CLOUD), "kubernetes", image="registry.example.com/router:1")
    assert "image: registry.example.com/router:1" in mine.text
    assert any(
        "registry.example.com/router:1 must be built with `deployer router image --with "
        "sagemaker`" in n
        for n in mine.notes
    )


def test_kubernetes_render_names_control_plane_providers_too() -> None:
    """Control-plane health needs the provider plugin as much as cloud auth does; an
    unknown provider gets the default image and the command to build one."""
    rendered = render(parse(PLAIN), "kubernetes")
    assert f"image: {default_image()}" in rendered.text
    (note,) = [n for n in rendered.notes if "router image" in n]
    assert "the http provider plugin" in note and "which the default image lacks" in note
    plain = render(parse(PLAIN.split("  - {name: hand")[0]), "kubernetes")
    assert f"image: {default_image()}" in plain.text
    assert not [n for n in plain.notes if "router image" in n]
