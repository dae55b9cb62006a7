"""The local target survives any crash: deployer killed (SIGKILL, through the
DEPLOYER_FAULT hook of deployer/local/faults.py) at every step boundary of push, rollback
and destroy; the front and a model container killed under traffic.

After each kill, ``status`` must tell the truth (what a real prediction through the front
answers is what status reports), and the next command must converge: exactly the serving
container and the kept previous version (no orphans), rollback still possible.

Two project folders share one project name and port: A holds the session's iris model,
B a retrained one, so they are two versions of the same target. Both images are built once
(module fixture); every ``push`` the tests run finds its image already built.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from docker_support import free_port, remove_repository

from deployer import Project
from deployer.local.faults import DESTROY_STEPS, PUSH_STEPS, ROLLBACK_STEPS

pytestmark = [pytest.mark.docker, pytest.mark.slow]
NAME = "crash-local-test"
OURS = {"label": f"deployer-project={NAME}"}
BODY = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
FRONT_LIMIT = 8 * 1024 * 1024  # bytes: the front's max_body_bytes in these projects


@dataclass
class Rig:
    docker: Any
    folders: dict[str, Path]  # "A" / "B" -> project folder
    versions: dict[str, str]  # "A" / "B" -> release version
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def folder_of(self, version: str) -> Path:
        return next(self.folders[k] for k, v in self.versions.items() if v == version)

    def other(self, version: str | None) -> str:
        return self.versions["A"] if version == self.versions["B"] else self.versions["B"]

    def project(self, key: str = "A") -> Project:
        return Project.load(self.folders[key] / "deployer.yaml")

    def cli(self, *args: str, folder: Path, fault: str | None = None) -> Any:
        env = {k: v for k, v in os.environ.items() if k != "DEPLOYER_FAULT"}
        if fault:
            env["DEPLOYER_FAULT"] = fault
        return subprocess.run(
            [sys.executable, "-m", "deployer", *args, "-f", str(folder / "deployer.yaml")],
            capture_output=True, text=True, timeout=600, env=env,
        )  # fmt: skip

    def containers(self) -> list[Any]:
        return list(self.docker.containers.list(all=True, filters=OURS))

    def version_of_backend(self, name: str) -> str:
        return str(self.docker.containers.get(name).labels["deployer-version"])


def write_project(folder: Path, port: int) -> None:
    (folder / "deployer.yaml").write_text(
        f"name: {NAME}\nmodel:\n  path: model.joblib\n"
        f"targets:\n  local:\n    provider: local\n    port: {port}\n"
        f"    max_body_bytes: {FRONT_LIMIT}\n    startup_timeout: 120\n"
    )


@pytest.fixture(scope="module")
def rig(
    docker: Any, iris_model_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rig]:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    port = free_port()
    folders = {key: tmp_path_factory.mktemp(f"crash-{key}") for key in "AB"}
    shutil.copy(iris_model_file, folders["A"] / "model.joblib")
    features, labels = load_iris(return_X_y=True)
    retrained = LogisticRegression(C=0.05, max_iter=500).fit(features, labels)
    joblib.dump(retrained, folders["B"] / "model.joblib")
    for folder in folders.values():
        write_project(folder, port)
    versions = {
        key: Project.load(f / "deployer.yaml").build().version for key, f in folders.items()
    }
    made = Rig(docker, folders, versions, port)
    try:
        yield made
    finally:
        made.project().destroy(["local"])
        remove_repository(docker, NAME)


# -- what is true, and what converged means --------------------------------------------


def observed(rig: Rig) -> str | None:
    """The version a real prediction through the front comes from (None: no answer)."""
    try:
        response = httpx.post(rig.url + "/invocations", json=BODY, timeout=30)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return rig.version_of_backend(response.headers["x-deployer-backend"])


def assert_truthful(rig: Rig) -> Any:
    """``status`` says what a real request answers; returns that status."""
    status = rig.project().status(["local"])[0]
    answered = observed(rig)
    if answered is None:
        assert not status.healthy, status
    else:
        assert status.healthy and status.version == answered, (status, answered)
    return status


def assert_converged(rig: Rig, serving: str, previous: str | None) -> None:
    """The front serves ``serving``; ``previous`` is kept stopped; nothing else is left."""
    status = assert_truthful(rig)
    assert status.healthy and status.version == serving, status
    assert status.details["previous_version"] == previous, status.details
    by_role: dict[str, list[Any]] = {}
    for container in rig.containers():
        by_role.setdefault(container.labels["deployer-role"], []).append(container)
    assert [c.status for c in by_role.get("front", [])] == ["running"]
    models = {c.labels["deployer-version"]: c.status for c in by_role.get("model", [])}
    expected = {serving: "running", **({previous: "exited"} if previous else {})}
    assert models == expected, models


def assert_ok(run: Any) -> None:
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "this is a bug" not in output and "Traceback" not in output, output


def assert_killed(run: Any) -> None:
    assert run.returncode == -signal.SIGKILL, (run.returncode, run.stdout + run.stderr)


def serving_now(rig: Rig) -> str:
    """Deploy A then B when nothing serves; the serving version (its previous is kept)."""
    status = rig.project().status(["local"])[0]
    if status.healthy and status.details.get("previous_version"):
        return str(status.version)
    for key in "AB":
        result = rig.project(key).push(["local"])
        assert result.ok, result.targets[0].error
    return rig.versions["B"]


# -- deployer killed at every step boundary ---------------------------------------------


@pytest.mark.parametrize("step", PUSH_STEPS)
def test_push_killed_at_each_step(rig: Rig, step: str) -> None:
    old = serving_now(rig)
    new = rig.other(old)
    assert_killed(rig.cli("push", "--to", "local", folder=rig.folder_of(new), fault=step))
    status = assert_truthful(rig)
    if status.version == new:  # killed after the switch: rollback still knows where to go
        assert status.details["previous_version"] == old, status.details
    again = rig.cli("push", "--to", "local", "-o", "json", folder=rig.folder_of(new))
    assert_ok(again)
    (target,) = json.loads(again.stdout)["targets"]
    switched = step in ("push:switched", "push:old-stopped", "push:pruned")
    assert target["outcome"] == ("unchanged" if switched else "updated"), target
    assert_converged(rig, new, old)


@pytest.mark.parametrize("step", ROLLBACK_STEPS)
def test_rollback_killed_at_each_step(rig: Rig, step: str) -> None:
    live = serving_now(rig)
    previous = rig.other(live)
    assert_killed(rig.cli("rollback", "--to", "local", folder=rig.folder_of(live), fault=step))
    if assert_truthful(rig).version == previous:  # it had switched: push tidies up
        assert_ok(rig.cli("push", "--to", "local", folder=rig.folder_of(previous)))
    else:  # it had not: the rollback runs again
        assert_ok(rig.cli("rollback", "--to", "local", folder=rig.folder_of(live)))
    assert_converged(rig, previous, live)


# -- the front and a model container killed under traffic -------------------------------


def crash(container: Any) -> None:
    """SIGKILL the container's main process from the host, as an OOM kill or a crash would
    (``docker kill`` counts as a manual stop: Docker would not restart it); returns once
    Docker has restarted it."""
    container.reload()
    restarts = container.attrs["RestartCount"]
    os.kill(container.attrs["State"]["Pid"], signal.SIGKILL)
    for _ in range(600):  # until Docker saw it die and started it again
        container.reload()
        if container.attrs["RestartCount"] > restarts:
            return
        time.sleep(0.1)
    raise AssertionError(f"Docker did not restart {container.name}")


class Traffic:
    """Predictions through the front from one thread, until stopped (bounded)."""

    def __init__(self, rig: Rig, limit: int = 3000) -> None:
        self.rig = rig
        self.limit = limit
        self.answers: list[tuple[int, bytes, str]] = []  # (status, body, content-type)
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(timeout=30) as http:
            while not self._stop.is_set() and len(self.answers) + self.refused < self.limit:
                try:
                    response = http.post(self.rig.url + "/invocations", json=BODY)
                except httpx.HTTPError:
                    self.refused += 1
                    self._stop.wait(0.1)
                    continue
                kind = response.headers.get("content-type", "")
                self.answers.append((response.status_code, response.content, kind))
                if response.status_code != 200:
                    self._stop.wait(0.1)

    def wait_for(self, count: int) -> None:
        """Until ``count`` more answers came back (or the bound is reached)."""
        target = len(self.answers) + count
        while len(self.answers) < target and self._thread.is_alive():
            self._stop.wait(0.05)

    def wait_until_ok(self) -> None:
        """Until a new answer is a 200 (or the bound is reached)."""
        start = len(self.answers)
        while self._thread.is_alive() and not any(a[0] == 200 for a in self.answers[start:]):
            self._stop.wait(0.05)

    def assert_clean(self, internal: list[str]) -> None:
        """Every failed answer is a JSON error naming no internal address."""
        for status, body, kind in self.answers:
            if status == 200:
                continue
            assert status in (502, 503, 504), (status, body)
            assert kind == "application/json" and b'"error"' in body, (status, body)
            for secret in (*internal, "http://", "httpx"):
                assert secret.encode() not in body, body


def test_front_killed_under_traffic_comes_back_with_its_upstream(rig: Rig) -> None:
    live = serving_now(rig)
    front = rig.docker.containers.get(f"{NAME}-local")
    with Traffic(rig) as traffic:
        traffic.wait_for(5)
        crash(front)  # Docker restarts it (restart policy); its tmpfs is gone
        traffic.wait_until_ok()  # it read its upstream back from its volume
    assert traffic.answers[-1][0] == 200
    traffic.assert_clean([f"{NAME}-local-"])
    assert observed(rig) == live
    again = rig.cli("push", "--to", "local", "-o", "json", folder=rig.folder_of(live))
    assert_ok(again)
    assert json.loads(again.stdout)["targets"][0]["outcome"] == "unchanged"
    assert_converged(rig, live, rig.other(live))


def test_front_removed_under_traffic_is_recreated_by_push(rig: Rig) -> None:
    live = serving_now(rig)
    with Traffic(rig) as traffic:
        traffic.wait_for(5)
        rig.docker.containers.get(f"{NAME}-local").remove(force=True)
        assert_truthful(rig)  # nothing answers: status says so
        again = rig.cli("push", "--to", "local", "-o", "json", folder=rig.folder_of(live))
        traffic.wait_for(5)
    assert_ok(again)  # the port's TIME-WAIT sockets do not stop the new front
    assert json.loads(again.stdout)["targets"][0]["outcome"] == "unchanged"
    traffic.assert_clean([f"{NAME}-local-"])
    assert_converged(rig, live, rig.other(live))


def test_model_killed_under_traffic_gives_clean_errors_then_recovers(rig: Rig) -> None:
    live = serving_now(rig)
    model = rig.docker.containers.get(f"{NAME}-local-{live}")
    with Traffic(rig) as traffic:
        traffic.wait_for(5)
        model.stop(timeout=0)  # stopped for good: every answer now comes from the front
        traffic.wait_for(5)
        assert traffic.answers[-1][0] == 502
        assert_truthful(rig)
        again = rig.cli("push", "--to", "local", folder=rig.folder_of(live))
        traffic.wait_for(5)
    assert_ok(again)
    traffic.assert_clean([f"{NAME}-local-"])
    assert traffic.answers[-1][0] == 200
    assert_converged(rig, live, rig.other(live))
    model = rig.docker.containers.get(f"{NAME}-local-{live}")
    with Traffic(rig) as traffic:
        traffic.wait_for(5)
        crash(model)  # Docker restarts the serving model container
        traffic.wait_until_ok()
    traffic.assert_clean([f"{NAME}-local-"])
    model.reload()
    why = (model.status, model.attrs["RestartCount"], model.logs(tail=10))
    assert traffic.answers[-1][0] == 200, why
    assert_converged(rig, live, rig.other(live))


# -- the front's bounds and headers ------------------------------------------------------


def front_memory(rig: Rig) -> int:
    stats = rig.docker.containers.get(f"{NAME}-local").stats(stream=False)
    return int(stats["memory_stats"]["usage"])


def test_front_refuses_a_body_over_its_limit_and_stays_small(rig: Rig) -> None:
    serving_now(rig)
    with socket.create_connection(("127.0.0.1", rig.port), timeout=30) as raw:
        raw.sendall(  # headers only: the answer comes before any of the body is sent
            b"POST /invocations HTTP/1.1\r\nHost: front\r\n"
            b"Content-Length: %d\r\n\r\n" % (FRONT_LIMIT + 1)
        )
        answer = b""
        while b"bytes" not in answer and (chunk := raw.recv(65536)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert f"the request body is larger than {FRONT_LIMIT} bytes".encode() in answer
    before = front_memory(rig)

    def endless() -> Iterator[bytes]:
        chunk = b"0" * 1024 * 1024
        for _ in range(300):  # 300 MB, chunked (no content-length)
            yield chunk

    try:
        streamed = httpx.post(rig.url + "/invocations", content=endless(), timeout=60)
        assert streamed.status_code == 413
    except httpx.WriteError:
        pass  # the front answered 413 and closed while the client still wrote
    assert front_memory(rig) < before + 32 * 1024 * 1024
    assert observed(rig) is not None  # and it still serves


def test_front_answers_carry_one_date_header(rig: Rig) -> None:
    serving_now(rig)
    response = httpx.post(rig.url + "/invocations", json=BODY)
    assert response.status_code == 200
    assert len(response.headers.get_list("date")) == 1
    assert not response.headers["x-deployer-backend"].startswith("http")


def test_front_runs_as_a_non_root_user_with_a_healthcheck(rig: Rig) -> None:
    serving_now(rig)
    front = rig.docker.containers.get(f"{NAME}-local")
    config = rig.docker.api.inspect_image(front.attrs["Image"])["Config"]
    assert config["User"] and not config["User"].startswith(("0", "root"))
    assert "deployer.local.front" in " ".join(config["Healthcheck"]["Test"])
    assert front.exec_run(["id", "-u"]).output.strip() != b"0"


# -- last, as each case ends with nothing deployed ----------------------------------------


@pytest.mark.parametrize("step", DESTROY_STEPS)
def test_destroy_killed_at_each_step(rig: Rig, step: str) -> None:
    if rig.project().status(["local"])[0].state == "absent":
        result = rig.project("A").push(["local"])
        assert result.ok, result.targets[0].error
    folder = rig.folders["A"]
    assert_killed(rig.cli("destroy", "--to", "local", "--yes", folder=folder, fault=step))
    assert_truthful(rig)
    assert_ok(rig.cli("destroy", "--to", "local", "--yes", folder=folder))
    assert rig.containers() == []
    assert rig.docker.volumes.list(filters={"label": f"deployer-project={NAME}"}) == []
    assert rig.docker.networks.list(filters={"label": f"deployer-project={NAME}"}) == []
    assert rig.project().status(["local"])[0].state == "absent"
