"""TorchServe as a peer of torch_serving.py: its model store, its config and its readiness.

Each start gets a fresh folder ``.work/torch/torchserve/<model>/`` with:

* ``store/<model>/``: the model packed by ``torch-model-archiver --archive-format no-archive``
  (the handler from peers/, the TorchScript file or the Hugging Face folder, and
  ``model-config.yaml``: 1 worker, ``batchSize`` 64, ``maxBatchDelay`` 1 ms, TorchServe's
  documented batching settings);
* ``config.properties``: every listener (REST inference, management, metrics, both gRPC
  ports) on a free port of 127.0.0.1, token authorization off (the benchmark sends no
  token), the per-minute system-metrics probe off (it would run on the server's core);
* with ``quiet_logs`` (the default of torch_serving.py): ``log4j2.xml``, warnings only, into
  one file, and ``async_logging=true``, TorchServe's documented ways to cut logging cost.
  Its built-in log4j2 config writes about ten lines per request (DEBUG level, the access
  log, per-request metrics, everything twice: file and console), which costs it throughput
  on one core; the benchmark measures the peer at its best, not at its noisiest;
* ``tmp/`` (TEMP and TMPDIR: TorchServe's pid file, worker sockets and unpacked model) and
  ``logs/`` (LOG_LOCATION), so two runs never share a file.

TorchServe needs Java 17+ (``java`` on PATH or JAVA_HOME). ``/ping`` answers 200 before the
Python worker has loaded the model, so after the start ``wait_workers`` polls the management
API until the worker is READY and checks the batching settings TorchServe reports.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import serving as base

# pyyaml: TorchServe's worker imports it, its wheel does not declare it (BentoML brings it too).
REQUIREMENTS = ("torchserve==0.12.0", "torch-model-archiver==0.12.0", "pyyaml")
BATCH_SIZE = 64
MAX_BATCH_DELAY_MS = 1
JAVA_MAJOR = 17
MODEL_CONFIG = f"""\
minWorkers: 1
maxWorkers: 1
batchSize: {BATCH_SIZE}
maxBatchDelay: {MAX_BATCH_DELAY_MS}
responseTimeout: 120
"""


@dataclass(frozen=True)
class TorchServe:
    """One TorchServe start: the server spec and where its management API listens."""

    spec: base.ServerSpec
    model_name: str
    management: str  # http://127.0.0.1:PORT

    def wait_workers(self, timeout_s: float) -> str:
        """Wait until the model's worker is READY, check the batching settings; say what
        TorchServe reports."""
        url = f"{self.management}/models/{self.model_name}"
        deadline = time.monotonic() + timeout_s
        described: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                with base.HTTP.open(url, timeout=2) as response:
                    described = json.loads(response.read())[0]
            except (OSError, ValueError, IndexError):
                described = {}
            workers = described.get("workers", [])
            if workers and all(w.get("status") == "READY" for w in workers):
                return check_settings(described)
            time.sleep(0.25)
        raise RuntimeError(f"torchserve worker not READY after {timeout_s:.0f}s: {described}")


def check_settings(described: dict[str, Any]) -> str:
    """The model as TorchServe describes it must batch as configured, with one worker;
    returns the settings checked."""
    wanted = {
        "batchSize": BATCH_SIZE,
        "maxBatchDelay": MAX_BATCH_DELAY_MS,
        "minWorkers": 1,
        "maxWorkers": 1,
    }
    got = {key: described.get(key) for key in wanted}
    if got != wanted or len(described.get("workers", [])) != 1:
        raise RuntimeError(f"torchserve settings {got}, expected {wanted} and one worker")
    pids = [w.get("pid") for w in described["workers"]]
    return f"{json.dumps(got)}, worker pids {pids}"


def java_problem() -> str | None:
    """Why TorchServe cannot start here (no Java, or older than 17), or None."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java:
        return f"no java on PATH (TorchServe needs Java {JAVA_MAJOR}+: openjdk-17-jre-headless)"
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True)
    except OSError as exc:
        return f"{java} does not run ({exc}); TorchServe needs Java {JAVA_MAJOR}+"
    found = re.search(r'version "(\d+)', done.stderr + done.stdout)
    if not found or int(found.group(1)) < JAVA_MAJOR:
        return f"{java} is not Java {JAVA_MAJOR}+: {(done.stderr or done.stdout).strip()[:200]}"
    return None


def archive(venv: Path, name: str, model: Path, handler: Path, folder: Path) -> Path:
    """The model store with ``name`` packed unarchived; returns the store folder."""
    store = folder / "store"
    store.mkdir(parents=True)
    config = folder / "model-config.yaml"
    config.write_text(MODEL_CONFIG)
    files = ["--extra-files", str(model)] if model.is_dir() else ["--serialized-file", str(model)]
    command = [
        str(venv / "bin" / "torch-model-archiver"),
        *("--model-name", name, "--version", "1.0", "--handler", str(handler)),
        *files,
        *("--config-file", str(config), "--archive-format", "no-archive"),
        *("--export-path", str(store)),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"torch-model-archiver failed:\n{done.stdout[-2000:]}{done.stderr}")
    return store


QUIET_LOG4J2 = """\
<?xml version="1.0" encoding="UTF-8"?>
<Configuration>
  <Appenders>
    <File name="ts_log" fileName="${env:LOG_LOCATION:-logs}/ts_log.log">
      <PatternLayout pattern="%d{ISO8601} [%-5p] %t %c - %m%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Logger name="io.netty" level="error"/>
    <Logger name="org.apache" level="off"/>
    <Root level="warn"><AppenderRef ref="ts_log"/></Root>
  </Loggers>
</Configuration>
"""


def config_properties(ports: dict[str, int], store: Path, name: str, quiet_logs: bool) -> str:
    """TorchServe's config.properties: loopback listeners, the model loaded at start."""
    lines = {
        "inference_address": f"http://127.0.0.1:{ports['inference']}",
        "management_address": f"http://127.0.0.1:{ports['management']}",
        "metrics_address": f"http://127.0.0.1:{ports['metrics']}",
        "grpc_inference_address": "127.0.0.1",
        "grpc_inference_port": str(ports["grpc_inference"]),
        "grpc_management_address": "127.0.0.1",
        "grpc_management_port": str(ports["grpc_management"]),
        "model_store": str(store),
        "load_models": name,
        "default_workers_per_model": "1",
        "disable_token_authorization": "true",
        "disable_system_metrics": "true",
        "install_py_dep_per_model": "false",
    }
    if quiet_logs:
        lines["async_logging"] = "true"
    return "".join(f"{key}={value}\n" for key, value in lines.items())


def torchserve(
    venv: Path,
    name: str,
    model: Path,
    handler: Path,
    folder: Path,
    env: dict[str, str],
    quiet_logs: bool = True,
) -> TorchServe:
    """A fresh TorchServe folder for ``model`` and the command that serves it in the foreground.

    ``env`` is the peers' environment (threads, PATH of the venv); TEMP, TMPDIR and the log
    folders are added. Raises RuntimeError when Java is missing or the archiver fails.
    """
    problem = java_problem()
    if problem:
        raise RuntimeError(problem)
    shutil.rmtree(folder, ignore_errors=True)
    store = archive(venv, name, model, handler, folder)
    listeners = ("inference", "management", "metrics", "grpc_inference", "grpc_management")
    ports = {listener: base.free_port() for listener in listeners}
    config = folder / "config.properties"
    config.write_text(config_properties(ports, store, name, quiet_logs))
    for sub in ("tmp", "logs"):
        (folder / sub).mkdir()
    tmp, logs = str(folder / "tmp"), str(folder / "logs")
    env = dict(env, TEMP=tmp, TMPDIR=tmp, LOG_LOCATION=logs, METRICS_LOCATION=logs)
    command = [
        str(venv / "bin" / "torchserve"),
        *("--start", "--foreground", "--ncs", "--ts-config", str(config)),
    ]
    if quiet_logs:
        (folder / "log4j2.xml").write_text(QUIET_LOG4J2)
        command += ["--log-config", str(folder / "log4j2.xml")]
    routes = (("json", f"/predictions/{name}"),)
    spec = base.ServerSpec(
        "torchserve", command, env, ports["inference"], "/ping", ("json",), folder, routes
    )
    return TorchServe(spec, name, f"http://127.0.0.1:{ports['management']}")


def describe(quiet_logs: bool) -> str:
    """One line for the results: how TorchServe was configured."""
    logs = (
        "warnings only, async_logging (--torchserve-logs quiet)"
        if quiet_logs
        else "its built-in log4j2 config (--torchserve-logs default)"
    )
    return (
        f"torchserve: batchSize {BATCH_SIZE}, maxBatchDelay {MAX_BATCH_DELAY_MS} ms, 1 worker "
        f"(model-config.yaml, checked on the management API), no-archive model store; logs: {logs}"
    )
