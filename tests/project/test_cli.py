"""The CLI as a user runs it: real subprocesses, exit codes, JSON output, start-up imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import heavy_in, imported_by

REPO = Path(__file__).resolve().parents[2]


def deployer(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployer", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "120", "NO_COLOR": "1"},
    )


@pytest.mark.parametrize("args", [["--help"], ["validate", "--help"], ["push", "--help"]])
def test_help_imports_no_cloud_sdk_and_no_docker(args: list[str]) -> None:
    code = (
        "import sys\n"
        f"sys.argv = ['deployer', *{args!r}]\n"
        "from deployer.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass"
    )
    modules = imported_by(code)
    assert "deployer.cli" in modules  # the probe really ran the CLI
    assert heavy_in(modules) == []


def test_validate_imports_no_cloud_sdk_and_no_docker(tmp_path: Path) -> None:
    (tmp_path / "deployer.yaml").write_text("name: x1\nmodel: {path: m.onnx}\n")
    (tmp_path / "m.onnx").write_bytes(b"")
    project_file = str(tmp_path / "deployer.yaml")
    code = (
        "import sys\n"
        f"sys.argv = ['deployer', 'validate', '--no-load', '-f', {project_file!r}]\n"
        "from deployer.cli import app\n"
        "try:\n    app()\nexcept SystemExit as e:\n    assert e.code == 0, e.code"
    )
    modules = imported_by(code)
    assert "deployer.config" in modules
    assert heavy_in(modules) == []


def test_help_teaches_the_commands() -> None:
    result = deployer("--help")
    assert result.returncode == 0
    for command in ("init", "validate", "serve", "lock"):
        assert command in result.stdout


def test_init_then_validate(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "examples/iris/train.py"), str(tmp_path / "model.joblib")],
        check=True,
        capture_output=True,
    )
    result = deployer("init", "--model", "model.joblib", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote deployer.yaml" in result.stderr
    result = deployer("validate", "-o", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["flavor"] == "sklearn"
    assert len(report["model_sha256"]) == 64


def test_validate_bad_config_exits_2_with_readable_lines(tmp_path: Path) -> None:
    (tmp_path / "deployer.yaml").write_text("name: iris\nmodel:\n  path: m.joblib\n  flavor: skl\n")
    result = deployer("validate", cwd=tmp_path)
    assert result.returncode == 2
    assert "line 4: model.flavor: expected 'sklearn'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    result = deployer("validate", "-o", "json", cwd=tmp_path)
    assert result.returncode == 2
    assert json.loads(result.stdout)["problems"][0].startswith("line 4: model.flavor")


def test_model_that_does_not_load_names_file_and_flavour(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"not an onnx graph")
    (tmp_path / "deployer.yaml").write_text("name: broken\nmodel:\n  path: model.onnx\n")
    result = deployer("validate", cwd=tmp_path)
    assert result.returncode == 2
    assert "model.onnx" in result.stderr and "onnx flavour" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_option_is_a_usage_error() -> None:
    result = deployer("validate", "--bogus")
    assert result.returncode == 2


def test_serve_banner_names_the_port_the_platform_dictates(tmp_path: Path) -> None:
    """AIP_HTTP_PORT (or SAGEMAKER_BIND_TO_PORT) moves the server: the banner says so. The
    project's training baseline gives /metrics its drift gauges, as the image's would."""
    import signal
    import time

    import httpx
    from serving_support import PLATFORM_VARIABLES, free_port

    subprocess.run(
        [sys.executable, str(REPO / "examples/iris/train.py"), str(tmp_path / "model.joblib")],
        check=True,
        capture_output=True,
    )
    assert deployer("init", "--model", "model.joblib", cwd=tmp_path).returncode == 0
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame.columns = ["a", "b", "c", "d", "y"]
    frame.to_csv(tmp_path / "train.csv", index=False)
    baseline = deployer("baseline", "-d", "train.csv", "-l", "y", cwd=tmp_path)
    assert baseline.returncode == 0, baseline.stderr
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in PLATFORM_VARIABLES}
    env.update({"AIP_HTTP_PORT": str(port), "COLUMNS": "200", "NO_COLOR": "1"})
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "deployer", "serve"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 120
        while True:  # wait for the event: the server answers on the platform's port
            assert process.poll() is None, stderr_path.read_text()
            assert time.monotonic() < deadline, stderr_path.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        body = '{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
        answer = httpx.post(f"http://127.0.0.1:{port}/invocations", content=body)
        assert answer.status_code == 200, answer.text
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert 'deployer_feature_psi{feature="a"}' in metrics, metrics
    assert "deployer_prediction_psi" in metrics
    banner = stderr_path.read_text()
    assert f"on http://127.0.0.1:{port} with" in banner, banner
    assert "127.0.0.1:8080" not in banner


def _local_project(folder: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "examples/iris/train.py"), str(folder / "model.joblib")],
        check=True,
        capture_output=True,
    )
    (folder / "deployer.yaml").write_text(
        "name: iris\nmodel:\n  path: model.joblib\ntargets:\n  local:\n    provider: local\n"
    )


@pytest.mark.parametrize("command", ["push", "plan"])
def test_a_timeout_shorter_than_the_bakes_exits_2_naming_both(tmp_path: Path, command: str) -> None:
    # linear:10 bakes 10 x 300 s: a 1800 s timeout would cut the rollout off half-done.
    # Refused before the build (no Docker needed), naming the timeout and the bakes
    _local_project(tmp_path)
    args = ["--to", "local", "--strategy", "linear:10", "--bake", "300", "--timeout", "1800"]
    result = deployer(command, *args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--timeout 1800 s" in result.stderr and "3000 s" in result.stderr
    assert "derived: 6000 s" in result.stderr  # 10 x (300 + local's 300 s allowance)
    assert "Traceback" not in result.stderr + result.stdout
