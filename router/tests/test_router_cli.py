"""``deployer router ...`` as a user runs it (``python -m deployer_router.cli``, the same
typer app deployer/cli.py mounts): exit codes, JSON output, no tracebacks; and the
router process imports only what the router image installs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml
from cli_support import imported_by
from router_support import FakeBackend, wait_until
from serving_support import free_port

REPO = Path(__file__).resolve().parents[2]


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 30 s; reaped and its pipes
    closed either way."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def router_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployer_router.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "120", "NO_COLOR": "1"},
    )


def as_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert "Traceback" not in result.stderr, result.stderr
    return dict(json.loads(result.stdout))


def test_create_edit_validate_show_render(tmp_path: Path) -> None:
    run = lambda *a: router_cli(*a, cwd=tmp_path)  # noqa: E731
    assert run("init", "--name", "iris").returncode == 0
    assert run("init").returncode == 2  # exists
    added = run(
        "add",
        "k8s",
        "--url",
        "http://10.0.0.1:8080",
        "--provider",
        "kubernetes",
        "--weight",
        "3",
        "-o",
        "json",
    )
    assert added.returncode == 0
    assert as_json(added)["manifest"]["backends"][0]["weight"] == 3
    assert run("add", "spare", "--url", "http://10.0.0.2:8080", "--tier", "1").returncode == 0
    assert (
        run(
            "add",
            "aws",
            "--provider",
            "sagemaker",
            "--region",
            "eu-west-1",
            "--url",
            "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/i/invocations",
        ).returncode
        == 0
    )
    assert run("set", "spare", "--weight", "2").returncode == 0
    assert run("set", "--policy", "least-latency").returncode == 0
    data = yaml.safe_load((tmp_path / "router.yaml").read_text())
    assert data["policy"] == "least-latency"
    assert [(b["name"], b["weight"], b["tier"]) for b in data["backends"]] == [
        ("k8s", 3, 0),
        ("spare", 2, 1),
        ("aws", 1, 0),
    ]
    assert data["backends"][2]["auth"] == "sigv4"
    validated = as_json(run("validate", "-o", "json"))
    assert validated["ok"] and validated["backends"] == 3
    assert any(
        "control-plane health needs the target's options" in w for w in validated["warnings"]
    )
    shown = as_json(run("show", "-o", "json"))
    assert [b["name"] for b in shown["backends"]] == ["k8s", "spare", "aws"]
    assert "k8s" in run("show").stdout
    rendered = as_json(run("render", "--format", "nginx", "--out", "nginx.conf", "-o", "json"))
    assert rendered["skipped"][0]["backend"] == "aws" and rendered["file"] == "nginx.conf"
    assert "upstream iris" in (tmp_path / "nginx.conf").read_text()
    text = run("render", "--format", "envoy")
    assert text.returncode == 0 and "static_resources" in text.stdout
    assert "skipped aws" in text.stderr
    assert run("remove", "aws").returncode == 0
    assert len(yaml.safe_load((tmp_path / "router.yaml").read_text())["backends"]) == 2


def test_bad_input_exit_2_with_line_and_field(tmp_path: Path) -> None:
    (tmp_path / "router.yaml").write_text("name: iris\nbackends:\n  - name: a\n    url: ftp://x\n")
    result = router_cli("validate", "-o", "json", cwd=tmp_path)
    assert result.returncode == 2
    document = as_json(result)
    assert document["ok"] is False
    assert document["problems"] == [
        "line 4: backends.0.url: expected an http:// or https:// URL (got 'ftp://x')"
    ]
    text = router_cli("serve", cwd=tmp_path)
    assert text.returncode == 2 and "line 4: backends.0.url" in text.stderr
    assert "Traceback" not in text.stderr
    assert router_cli("set", "nope", "--weight", "1", cwd=tmp_path).returncode == 2
    missing = router_cli("validate", "elsewhere.yaml", cwd=tmp_path)
    assert missing.returncode == 2 and "deployer router init" in missing.stderr
    unknown = router_cli("render", "--format", "traefik", cwd=tmp_path)
    assert unknown.returncode == 2


def test_missing_signer_plugin_exits_3_naming_the_distribution(tmp_path: Path) -> None:
    (tmp_path / "router.yaml").write_text(
        "name: iris\nbackends:\n  - {name: gcp, provider: vertex, auth: google-oauth,\n"
        "     url: 'https://x-aiplatform.googleapis.com/v1/e:rawPredict'}\n"
    )
    # deployer-gcp is installed in the test venv: hide its entry point, as if it were not
    hide_vertex = (
        "import sys\n"
        "import deployer.providers as providers\n"
        "installed = providers.available_providers\n"
        "providers.available_providers = lambda: {\n"
        "    k: v for k, v in installed().items() if k != 'vertex'}\n"
        "from deployer_router.cli import main\n"
        f"sys.argv = ['router', 'serve', '--port', '{free_port()}']\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", hide_vertex],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3, result.stderr
    assert "deployer-gcp" in result.stderr and "Traceback" not in result.stderr


def test_serve_drains_on_sigterm(tmp_path: Path) -> None:
    fake = FakeBackend("a")
    port = free_port()
    (tmp_path / "router.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "iris",
                "backends": [{"name": "a", "url": fake.url, "health": {"source": "none"}}],
            }
        )
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deployer_router.cli",
            "serve",
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(url + "/-/router/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, timeout=60, message="router ready")
        assert httpx.post(url + "/invocations", content=b"{}").status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        events = [json.loads(line) for line in process.stderr.read().decode().splitlines()]  # type: ignore[union-attr]
        assert [e["event"] for e in events if e["event"].startswith(("router", "stopping"))] == [
            "router listening",
            "stopping: finishing requests in flight",
        ]
    finally:
        stop(process)
        fake.close()


BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class NotInTheImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED or name in ("deployer.config", "deployer.cli"):
            raise ModuleNotFoundError(f"No module named {{name!r}} (not in the router image)")
sys.meta_path.insert(0, NotInTheImage())
from deployer_router.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_the_router_runs_on_what_the_router_image_installs(tmp_path: Path) -> None:
    """Block every distribution the router image lacks (ROUTER_REQUIREMENTS has orjson,
    httptools, uvloop, pydantic, pyyaml, prometheus-client) and run it."""
    blocked = [
        "uvicorn",
        "httpx",
        "typer",
        "rich",
        "click",
        "docker",
        "boto3",
        "botocore",
        "google",
        "azure",
        "numpy",
        "sklearn",
        "scipy",
        "aiohttp",
        "requests",
        "kubernetes",
    ]
    fake = FakeBackend("a")
    port = free_port()
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump({"name": "iris", "backends": [{"name": "a", "url": fake.url}]}))
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            BLOCKER.format(blocked=blocked),
            "serve",
            str(path),
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
        try:
            return httpx.post(url + "/invocations", content=b"{}", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, timeout=60, message="the router answers")
        assert "deployer_router_backend_requests_total" in httpx.get(url + "/metrics").text
        assert httpx.get(url + "/-/router/health").json()["ok"] is True
    finally:
        stop(process)
        fake.close()
    assert process.returncode == 0


def test_importing_the_cli_imports_no_cloud_sdk() -> None:
    def modules(code: str) -> set[str]:
        probe = f"import sys, json; {code}; print(json.dumps(sorted(sys.modules)))"
        result = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO
        )
        return set(json.loads(result.stdout.strip().splitlines()[-1]))

    # namespace packages some environments load at start-up (google.cloud .pth) are not ours
    loaded = modules("import deployer_router.cli") - modules("pass")
    assert "deployer_router.cli" in loaded
    heavy = {"boto3", "botocore", "google", "azure", "docker", "kubernetes", "pydantic"}
    assert sorted(m for m in loaded if m.split(".")[0] in heavy) == []


def test_deployer_router_is_the_entry_point_mount_and_found_only_when_asked() -> None:
    """`deployer router` comes from the deployer.commands entry point; `deployer validate
    --help` never imports the router."""
    result = subprocess.run(
        [sys.executable, "-m", "deployer", "router", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "120", "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "render" in result.stdout and "image" in result.stdout
    probe = (
        "import sys\nsys.argv = ['deployer', 'validate', '--help']\n"
        "from deployer.cli import app\ntry:\n    app()\nexcept SystemExit:\n    pass"
    )
    loaded = imported_by(probe)
    assert "deployer.cli" in loaded
    assert sorted(m for m in loaded if m.startswith("deployer_router")) == []


def test_without_the_distribution_deployer_router_names_it() -> None:
    """As if deployer-router were not installed: exit 3 and the pip install that brings it."""
    code = (
        "import sys\nimport deployer.commands as commands\n"
        "commands.command_entry_points = dict\n"
        "sys.argv = ['deployer', *sys.argv[1:]]\n"
        "from deployer.cli import main\nmain()"
    )
    for args in (["router", "serve", "router.yaml"], ["router", "--help"]):
        result = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "120", "NO_COLOR": "1"},
        )
        assert result.returncode == 3, result.stderr
        assert "deployer-router" in result.stderr and "pip install deployer-router" in result.stderr
    listed = subprocess.run(
        [sys.executable, "-c", code, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "120", "NO_COLOR": "1"},
    )
    assert listed.returncode == 0 and "pip install deployer-router" in listed.stdout
