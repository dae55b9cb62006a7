"""Side-by-side serving benchmark: our model server vs MLflow and MLServer (issue 2).

    .venv/bin/python benchmarks/serving.py [--duration 10] [--concurrency 1,8,32,128]
        [--workers 1] [--rounds 3] [--skip-setup] [--json out.json] [--markdown out.md]

Every server serves the same scikit-learn iris pipeline and is driven by the same load
generator: wrk with benchmarks/post.lua, which POSTs one JSON body over keep-alive
connections and prints latency percentiles and a non-2xx count as one JSON line.

Two comparisons, each at every concurrency:

* ``invocations``: ``POST /invocations`` with ``{"instances": [[...]]}``, ours vs MLflow.
* ``oip``: ``POST /v2/models/iris/infer`` with an OIP v2 body, ours vs MLServer.

Setup (skipped by ``--skip-setup``): the peers venv benchmarks/.peers/venv gets MLflow,
MLServer and our venv's scikit-learn version, then each venv trains its own copy of the
model into benchmarks/.work/ (see train_iris.py). Both directories are gitignored.

With one worker per server on a machine with two or more cores, each server's whole
process tree is pinned to core 0 and wrk (one thread) to core 1. Servers listen on free
ports of 127.0.0.1 only, start in their own session, and are killed as a process group.

The whole sequence (start a server, verify, warm up, measure every point, stop) runs
``--rounds`` times, rotating the server order. Every run also records the CPU the server
used and the CPU that other processes took on the server's core: on a shared machine a
disturbed run is measured again (``--retries``) once the machine is quiet, and the
tables show each point's median undisturbed run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS_VENV = HERE / ".peers" / "venv"
WORK = HERE / ".work"
LUA_SCRIPT = HERE / "post.lua"
TRAIN_SCRIPT = HERE / "train_iris.py"
OUR_PYTHON = Path(sys.executable)
PEER_PYTHON = PEERS_VENV / "bin" / "python"

MODEL_NAME = "iris"
ROW = [5.1, 3.5, 1.4, 0.2]  # the first iris sample: class 0 (setosa)
EXPECTED_CLASS = 0
BODIES: dict[str, dict[str, Any]] = {
    "invocations": {"instances": [ROW]},
    "oip": {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROW}]},
}
PATHS = {"invocations": "/invocations", "oip": f"/v2/models/{MODEL_NAME}/infer"}
# (protocol, peer): each comparison puts ours beside one peer on one route and body.
COMPARISONS = (("invocations", "mlflow"), ("oip", "mlserver"))
TARGET = ("invocations", "mlflow", 32)  # issue 2: >= 2x MLflow's req/s here, p99 no worse

# Versions this benchmark was last run with. uvloop<0.22: MLServer 1.7.1's inference
# workers call asyncio.get_event_loop() at start, which uvloop 0.22+ turns into a
# RuntimeError (SeldonIO/MLServer#2286), so every model fails to load.
MLFLOW_REQUIREMENTS = ("mlflow==3.17.2",)
MLSERVER_REQUIREMENTS = ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop<0.22")
VERSION_PACKAGES = (
    "deployer",
    "mlflow",
    "mlserver",
    "mlserver-sklearn",
    "scikit-learn",
    "numpy",
    "pandas",
    "uvicorn",
    "uvloop",
    "httptools",
    "h11",
    "fastapi",
    "starlette",
    "orjson",
)

SERVER_CORE = 0
WRK_CORE = 1
WRK_TIMEOUT = "10s"  # a request slower than this counts as a socket error (timeout)
# Loopback only: never let an *_proxy environment variable route benchmark traffic.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --- results -------------------------------------------------------------------------


@dataclass
class Point:
    """One wrk run against one server route at one concurrency."""

    server: str
    protocol: str
    concurrency: int
    round: int
    requests: int
    duration_s: float
    ok_rps: float  # 2xx answers per second: errors never count as throughput
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    first_bad_status: int
    socket_errors: int  # connect + read + write errors and timeouts
    server_cpu_pct: float  # CPU time of the server's process tree / wall time
    other_cpu_pct: float  # CPU other processes took on the server's core(s) meanwhile
    wrk_cpu_pct: float

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors


@dataclass
class Summary:
    """A point over all its runs: the median of the undisturbed runs, and every error.

    A run is disturbed when other processes took more than ``max_other_cpu`` percent of
    the server's core during it; when every run was, all are used and the point is
    marked noisy.
    """

    median: Point
    rps: list[float]  # req/s of the runs used
    clean: int  # undisturbed runs
    runs: int
    errors: int  # over every run, used or not

    @property
    def noisy(self) -> bool:
        return self.clean == 0

    @property
    def spread_pct(self) -> float:
        """(max - min) / median req/s over the runs used, in percent."""
        if not self.median.ok_rps:
            return 0.0
        return 100 * (max(self.rps) - min(self.rps)) / self.median.ok_rps


@dataclass
class Run:
    """Everything one invocation of this script measured, plus the facts to judge it by."""

    command: str
    machine: dict[str, Any]
    versions: dict[str, dict[str, str]]
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)

    def summary(self, server: str, protocol: str, concurrency: int) -> Summary | None:
        runs = [
            p
            for p in self.points
            if (p.server, p.protocol, p.concurrency) == (server, protocol, concurrency)
        ]
        if not runs:
            return None
        limit = self.settings["max_other_cpu"]
        clean = [p for p in runs if p.other_cpu_pct <= limit]
        used = sorted(clean or runs, key=lambda p: p.ok_rps)
        return Summary(
            median=used[(len(used) - 1) // 2],
            rps=[p.ok_rps for p in used],
            clean=len(clean),
            runs=len(runs),
            errors=sum(p.errors for p in runs),
        )


# --- setup ---------------------------------------------------------------------------


def pip_install(requirements: list[str]) -> subprocess.CompletedProcess[str]:
    """pip install into the peers venv; output is returned, not printed."""
    command = [str(PEER_PYTHON), "-m", "pip", "install", "--disable-pip-version-check"]
    return subprocess.run([*command, *requirements], capture_output=True, text=True)


def ensure_peers_venv() -> list[str]:
    """Create the peers venv and install MLflow and MLServer when missing. Returns notes.

    MLflow is required; an MLServer install failure is reported and MLServer skipped.
    """
    notes: list[str] = []
    if not PEER_PYTHON.exists():
        print(f"creating {PEERS_VENV}", flush=True)
        subprocess.run([str(OUR_PYTHON), "-m", "venv", str(PEERS_VENV)], check=True)
    sklearn = f"scikit-learn=={metadata.version('scikit-learn')}"
    if not (PEERS_VENV / "bin" / "mlflow").exists():
        print("installing MLflow into the peers venv (about a minute)", flush=True)
        done = pip_install([*MLFLOW_REQUIREMENTS, sklearn])
        if done.returncode != 0:
            raise SystemExit(f"pip could not install MLflow:\n{done.stdout[-3000:]}{done.stderr}")
    if not (PEERS_VENV / "bin" / "mlserver").exists():
        print("installing MLServer into the peers venv", flush=True)
        done = pip_install([*MLFLOW_REQUIREMENTS, *MLSERVER_REQUIREMENTS, sklearn])
        if done.returncode != 0:
            notes.append(f"MLServer did not install: {done.stderr.strip()[-1500:]}")
    return notes


def train_models() -> dict[str, dict[str, Any]]:
    """Train the iris model in each venv; returns each side's versions and prediction."""
    runs = {
        "ours": [str(OUR_PYTHON), str(TRAIN_SCRIPT), "--joblib", str(WORK / "ours.joblib")],
        "peers": [
            str(PEER_PYTHON),
            str(TRAIN_SCRIPT),
            "--joblib",
            str(WORK / "peers.joblib"),
            "--mlflow",
            str(WORK / "mlflow-model"),
        ],
    }
    facts = {}
    for side, command in runs.items():
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        facts[side] = json.loads(done.stdout.strip().splitlines()[-1])
        if facts[side]["prediction"] != EXPECTED_CLASS:
            raise SystemExit(f"the {side} model predicts {facts[side]['prediction']} for {ROW}")
    return facts


def venv_versions(python: Path, packages: tuple[str, ...] = VERSION_PACKAGES) -> dict[str, str]:
    """Installed versions of ``packages`` in the venv of ``python``."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try: out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [str(python), "-c", code, *packages], capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout))


def deployer_commit() -> str:
    """HEAD's short hash, with "+changes" when deployer/ differs from it (unknown without git)."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return "unknown"
    status = subprocess.run(
        [*git, "status", "--porcelain", "--", "deployer"], capture_output=True, text=True
    )
    return head.stdout.strip() + ("+changes" if status.stdout.strip() else "")


def machine_facts() -> dict[str, Any]:
    """Cores, CPU model, kernel, Python and wrk versions, and the load average now."""
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": (wrk.stdout or wrk.stderr).splitlines()[0].split(" Copyright")[0].strip(),
        "loadavg_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "deployer_commit": deployer_commit(),
    }


# --- servers -------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server and where to find it."""

    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    ready_path: str
    protocols: tuple[str, ...]
    cwd: Path = ROOT
    routes: tuple[tuple[str, str], ...] = ()  # (protocol, path) where not PATHS[protocol]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, protocol: str) -> str:
        """The path this server answers ``protocol`` on."""
        return dict(self.routes).get(protocol) or PATHS[protocol]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peer_env() -> dict[str, str]:
    """The environment of an activated peers venv (MLflow execs ``uvicorn`` from PATH)."""
    env = dict(os.environ)
    env["PATH"] = f"{PEERS_VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(PEERS_VENV)
    return env


def ours_spec(workers: int) -> ServerSpec:
    """``python -m deployer.serving serve`` with settings in DEPLOYER_SERVING_SETTINGS."""
    port = free_port()
    settings = {
        "model_name": MODEL_NAME,
        "flavor": "sklearn",
        "model_path": str(WORK / "ours.joblib"),
        "host": "127.0.0.1",
        "port": port,
        "workers": workers,
    }
    env = dict(os.environ, DEPLOYER_SERVING_SETTINGS=json.dumps(settings))
    command = [str(OUR_PYTHON), "-m", "deployer.serving", "serve"]
    return ServerSpec("ours", command, env, port, "/ping", ("invocations", "oip"))


def mlflow_spec(workers: int) -> ServerSpec:
    """``mlflow models serve`` on the model saved by mlflow.sklearn.save_model."""
    port = free_port()
    command = [
        str(PEERS_VENV / "bin" / "mlflow"),
        "models",
        "serve",
        "-m",
        str(WORK / "mlflow-model"),
        "--env-manager",
        "local",
        "-p",
        str(port),
        "-w",
        str(workers),
        "--host",
        "127.0.0.1",
    ]
    return ServerSpec("mlflow", command, peer_env(), port, "/ping", ("invocations",))


def mlserver_spec(workers: int) -> ServerSpec:
    """``mlserver start`` on a model repository with one mlserver-sklearn model.

    MLServer's defaults are kept except ports, host and ``parallel_workers`` (the number
    of inference processes beside its front-end process), which is set to ``workers``.
    """
    http, grpc, metrics = free_port(), free_port(), free_port()
    repo = WORK / "mlserver"
    model_dir = repo / MODEL_NAME
    model_dir.mkdir(parents=True, exist_ok=True)
    server_settings = {
        "host": "127.0.0.1",
        "http_port": http,
        "grpc_port": grpc,
        "metrics_port": metrics,
        "parallel_workers": workers,
    }
    model_settings = {
        "name": MODEL_NAME,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(WORK / "peers.joblib"), "version": "1"},
    }
    (repo / "settings.json").write_text(json.dumps(server_settings, indent=2))
    (model_dir / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
    command = [str(PEERS_VENV / "bin" / "mlserver"), "start", str(repo)]
    ready = f"/v2/models/{MODEL_NAME}/ready"
    return ServerSpec("mlserver", command, peer_env(), http, ready, ("oip",), cwd=repo)


BUILDERS = {"ours": ours_spec, "mlflow": mlflow_spec, "mlserver": mlserver_spec}


def process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_group(process: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever is left after ``grace_s``."""
    pgid = process.pid  # start_new_session: the leader's pid is the group id
    if process_group_alive(pgid):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and process_group_alive(pgid):
        process.poll()  # reap the leader so a zombie does not keep the group "alive"
        time.sleep(0.1)
    if process_group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)
    process.wait()


def http_get_status(url: str) -> int | None:
    try:
        with HTTP.open(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def wait_ready(
    spec: ServerSpec, process: subprocess.Popen[bytes], log: Path, timeout_s: float
) -> float:
    """Poll the readiness route until it answers 200; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(f"{spec.name} exited with {process.returncode}:\n{tail(log)}")
        if http_get_status(spec.url(spec.ready_path)) == 200:
            return time.monotonic() - started
        time.sleep(0.25)
    raise RuntimeError(f"{spec.name} not ready after {timeout_s:.0f}s:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(line for line in text[-lines:] if not line.startswith("WARNING: Location"))


@contextmanager
def running(spec: ServerSpec, pin: bool, timeout_s: float) -> Iterator[subprocess.Popen[bytes]]:
    """Start the server (pinned to SERVER_CORE when ``pin``), wait for readiness, stop it."""
    log = WORK / "logs" / f"{spec.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = ["taskset", "-c", str(SERVER_CORE), *spec.command] if pin else spec.command
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command,
            cwd=spec.cwd,
            env=spec.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        seconds = wait_ready(spec, process, log, timeout_s)
        print(f"  {spec.name} ready in {seconds:.1f}s (pid {process.pid}, log {log})", flush=True)
        yield process
    finally:
        stop_group(process)


def post_json(url: str, body: bytes) -> Any:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with HTTP.open(request, timeout=10) as response:
        return json.loads(response.read())


def prediction_of(protocol: str, answer: Any) -> Any:
    """The predicted class in a response of either protocol."""
    if protocol == "invocations":
        return answer["predictions"][0]
    return answer["outputs"][0]["data"][0]


def verify(spec: ServerSpec, protocol: str, body_file: Path) -> None:
    """One request with the benchmark body must answer 200 with EXPECTED_CLASS."""
    url = spec.url(spec.route(protocol))
    try:
        answer = post_json(url, body_file.read_bytes())
        predicted = prediction_of(protocol, answer)
    except (OSError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise RuntimeError(f"{spec.name} did not predict on {url}: {exc}") from exc
    if predicted != EXPECTED_CLASS:
        raise RuntimeError(f"{spec.name} predicted {predicted!r}, expected {EXPECTED_CLASS}")
    print(f"  {spec.name} {spec.route(protocol)} -> {json.dumps(answer)[:120]}", flush=True)


# --- CPU accounting ------------------------------------------------------------------


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in the process group of ``pgid``
    or descended from its leader (some servers start workers in groups of their own)."""
    stats: dict[int, tuple[int, int, float]] = {}  # pid: (parent, group, cpu ticks)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="utf-8") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is the state: ppid, pgrp, utime, stime are 1, 2, 11, 12
        stats[int(entry.name)] = (int(fields[1]), int(fields[2]), int(fields[11]) + int(fields[12]))

    def in_tree(pid: int) -> bool:
        for _ in range(64):  # a parent chain is short; the bound guards a pid reused midway
            if pid == pgid:
                return True
            parent = stats.get(pid)
            if parent is None or parent[0] <= 1:
                return False
            pid = parent[0]
        return False

    total = sum(ticks for pid, (_, group, ticks) in stats.items() if group == pgid or in_tree(pid))
    return total / os.sysconf("SC_CLK_TCK")


def busy_cpu_seconds(core: int | None) -> float:
    """CPU seconds processes ran (user, nice, system) or the hypervisor stole, since boot,
    on one core (all cores for None). Interrupt time is left out: the loopback traffic
    of the benchmark itself shows up there."""
    label = "cpu" if core is None else f"cpu{core}"
    with open("/proc/stat", encoding="utf-8") as f:
        for line in f:
            name, *values = line.split()
            if name == label:
                user, nice, system, _idle, _iowait, _irq, _softirq, steal = map(int, values[:8])
                return (user + nice + system + steal) / os.sysconf("SC_CLK_TCK")
    raise RuntimeError(f"no {label} line in /proc/stat")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuSample:
    """CPU counters at one instant: the server tree, our children (wrk), the server core."""

    server: float
    wrk: float
    core: float
    at: float

    @classmethod
    def take(cls, pgid: int, pin: bool) -> CpuSample:
        core = busy_cpu_seconds(SERVER_CORE if pin else None)
        return cls(group_cpu_seconds(pgid), children_cpu_seconds(), core, time.monotonic())


def cpu_percentages(before: CpuSample, after: CpuSample, pin: bool) -> tuple[float, float, float]:
    """(server, other, wrk) CPU percent of one core over the interval.

    "other" is what the rest of the machine took on the server's core (on every core when
    unpinned, less wrk): near 0 on a quiet machine.
    """
    wall = after.at - before.at
    server, wrk = after.server - before.server, after.wrk - before.wrk
    other = (after.core - before.core) - server - (0 if pin else wrk)

    def percent(seconds: float) -> float:
        return round(100 * max(seconds, 0.0) / wall, 1)

    return percent(server), percent(other), percent(wrk)


# --- load generation -----------------------------------------------------------------


def wrk_command(
    url: str, body_file: Path, concurrency: int, duration_s: int, pin: bool
) -> list[str]:
    command = [
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{duration_s}s",
        "--timeout",
        WRK_TIMEOUT,
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        str(body_file),
    ]
    return ["taskset", "-c", str(WRK_CORE), *command] if pin else command


def run_wrk(command: list[str]) -> dict[str, Any]:
    """Run wrk and return the WRK_JSON line that post.lua's done() prints."""
    done = subprocess.run(command, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            return dict(json.loads(line[len("WRK_JSON ") :]))
    raise RuntimeError(f"wrk printed no result ({done.returncode}):\n{done.stdout}{done.stderr}")


@dataclass(frozen=True)
class Plan:
    """What to measure for every server, and how to cope with a busy machine.

    A run during which other processes took more than ``max_other_cpu`` percent of the
    server's core is disturbed: it is kept (and reported) but measured again, up to
    ``retries`` times, each time after waiting up to ``quiet_wait_s`` for a quiet second.
    """

    concurrency: list[int]
    duration_s: int
    warmup_s: int
    pin: bool
    round: int
    bodies: dict[str, Path]
    startup_timeout_s: float
    max_other_cpu: float
    retries: int
    quiet_wait_s: float


def measure(spec: ServerSpec, pgid: int, protocol: str, concurrency: int, plan: Plan) -> Point:
    """One wrk run, with the CPU the server tree, other processes and wrk used meanwhile."""
    url = spec.url(spec.route(protocol))
    command = wrk_command(url, plan.bodies[protocol], concurrency, plan.duration_s, plan.pin)
    before = CpuSample.take(pgid, plan.pin)
    result = run_wrk(command)
    server_cpu, other_cpu, wrk_cpu = cpu_percentages(
        before, CpuSample.take(pgid, plan.pin), plan.pin
    )
    duration = result["duration_us"] / 1e6
    socket_errors = sum(
        result[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return Point(
        server=spec.name,
        protocol=protocol,
        concurrency=concurrency,
        round=plan.round,
        requests=result["requests"],
        duration_s=round(duration, 3),
        ok_rps=round((result["requests"] - result["non2xx"]) / duration, 1),
        p50_ms=result["p50_us"] / 1000,
        p90_ms=result["p90_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        max_ms=result["max_us"] / 1000,
        non2xx=result["non2xx"],
        first_bad_status=result["first_bad_status"],
        socket_errors=socket_errors,
        server_cpu_pct=server_cpu,
        other_cpu_pct=other_cpu,
        wrk_cpu_pct=wrk_cpu,
    )


def wait_for_quiet(pgid: int, plan: Plan) -> None:
    """Sample one second at a time until other processes leave the server's core alone
    (at most ``plan.max_other_cpu`` percent), for up to ``plan.quiet_wait_s`` seconds."""
    deadline = time.monotonic() + plan.quiet_wait_s
    while True:
        before = CpuSample.take(pgid, plan.pin)
        time.sleep(1)  # also lets the last point's closed connections drain
        _, other, _ = cpu_percentages(before, CpuSample.take(pgid, plan.pin), plan.pin)
        if other <= plan.max_other_cpu or time.monotonic() >= deadline:
            return


def measure_undisturbed(
    spec: ServerSpec, pgid: int, protocol: str, concurrency: int, plan: Plan
) -> list[Point]:
    """Measure a point, again while the runs are disturbed (up to ``plan.retries`` more)."""
    points: list[Point] = []
    while len(points) <= plan.retries:
        wait_for_quiet(pgid, plan)
        point = measure(spec, pgid, protocol, concurrency, plan)
        points.append(point)
        disturbed = point.other_cpu_pct > plan.max_other_cpu
        print(f"  {describe(point)}{' (disturbed)' if disturbed else ''}", flush=True)
        if not disturbed:
            break
    return points


def benchmark_server(spec: ServerSpec, protocols: list[str], plan: Plan) -> list[Point]:
    """Start one server, then verify, warm up and measure each protocol at each concurrency."""
    points = []
    with running(spec, plan.pin, plan.startup_timeout_s) as process:
        for protocol in protocols:
            verify(spec, protocol, plan.bodies[protocol])
            url = spec.url(spec.route(protocol))
            run_wrk(wrk_command(url, plan.bodies[protocol], 8, plan.warmup_s, plan.pin))
            for concurrency in plan.concurrency:
                points += measure_undisturbed(spec, process.pid, protocol, concurrency, plan)
    return points


def protocols_to_run(server: str, servers: list[str]) -> list[str]:
    """A peer's protocols; for ours, those of the peers being run (all when none is)."""
    if server != "ours":
        return [protocol for protocol, peer in COMPARISONS if peer == server]
    compared = [protocol for protocol, peer in COMPARISONS if peer in servers]
    return compared or list(PATHS)


def describe(p: Point) -> str:
    errors = f" ERRORS non2xx={p.non2xx} socket={p.socket_errors}" if p.errors else ""
    return (
        f"{p.server:8} {p.protocol:11} c={p.concurrency:<3} {p.ok_rps:9.1f} req/s "
        f"p50 {p.p50_ms:8.2f} ms  p99 {p.p99_ms:8.2f} ms  "
        f"cpu server {p.server_cpu_pct:5.1f}% other {p.other_cpu_pct:5.1f}% "
        f"wrk {p.wrk_cpu_pct:5.1f}%{errors}"
    )


# --- reporting -----------------------------------------------------------------------


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def rps_cell(s: Summary) -> str:
    """Median req/s, ± half the spread of the runs used, † when every run was disturbed."""
    spread = f" ±{s.spread_pct / 2:.0f}%" if len(s.rps) > 1 else ""
    return f"{s.median.ok_rps:,.0f}{spread}{' †' if s.noisy else ''}"


def errors_cell(s: Summary) -> str:
    if not s.errors:
        return "0"
    status = f" (e.g. HTTP {s.median.first_bad_status})" if s.median.first_bad_status else ""
    return f"**{s.errors}{status}**"


def paired(run: Run, protocol: str, peer: str) -> Iterator[tuple[int, Summary, Summary]]:
    for concurrency in run.settings["concurrency"]:
        ours = run.summary("ours", protocol, concurrency)
        theirs = run.summary(peer, protocol, concurrency)
        if ours is not None and theirs is not None:
            yield concurrency, ours, theirs


def comparison_rows(run: Run, protocol: str, peer: str) -> list[list[str]]:
    """Median runs side by side: req/s (spread), ratio, p50, p99, p99 ratio, errors."""
    rows = []
    for concurrency, ours, theirs in paired(run, protocol, peer):
        a, b = ours.median, theirs.median
        rows.append(
            [
                str(concurrency),
                rps_cell(ours),
                rps_cell(theirs),
                ratio(a.ok_rps, b.ok_rps),
                f"{a.p50_ms:.2f}",
                f"{b.p50_ms:.2f}",
                f"{a.p99_ms:.2f}",
                f"{b.p99_ms:.2f}",
                ratio(a.p99_ms, b.p99_ms),
                f"{errors_cell(ours)} / {errors_cell(theirs)}",
            ]
        )
    return rows


def cpu_rows(run: Run, protocol: str, peer: str) -> list[list[str]]:
    """Median runs' CPU (server trees, other processes, wrk) and the runs used."""
    rows = []
    for concurrency, ours, theirs in paired(run, protocol, peer):
        a, b = ours.median, theirs.median
        rows.append(
            [
                str(concurrency),
                f"{a.server_cpu_pct:.0f}%",
                f"{b.server_cpu_pct:.0f}%",
                f"{a.other_cpu_pct:.0f}% / {b.other_cpu_pct:.0f}%",
                f"{a.wrk_cpu_pct:.0f}% / {b.wrk_cpu_pct:.0f}%",
                f"{ours.clean} of {ours.runs} / {theirs.clean} of {theirs.runs}",
            ]
        )
    return rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def comparison_tables(run: Run, protocol: str, peer: str) -> str:
    main = markdown_table(
        [
            "c",
            "ours req/s",
            f"{peer} req/s",
            "req/s ours/peer",
            "ours p50 ms",
            f"{peer} p50 ms",
            "ours p99 ms",
            f"{peer} p99 ms",
            "p99 ours/peer",
            "errors ours / peer",
        ],
        comparison_rows(run, protocol, peer),
    )
    cpu = markdown_table(
        [
            "c",
            "ours server CPU",
            f"{peer} server CPU",
            "other procs on server core (ours / peer)",
            "wrk CPU (ours / peer)",
            "undisturbed runs (ours / peer)",
        ],
        cpu_rows(run, protocol, peer),
    )
    return f"{main}\n\nCPU, as % of one core:\n\n{cpu}"


def target_verdict(run: Run) -> str:
    """Issue 2's target: ours >= 2x MLflow's req/s at c=32, p99 no worse, no errors."""
    protocol, peer, concurrency = TARGET
    ours, theirs = (
        run.summary("ours", protocol, concurrency),
        run.summary(peer, protocol, concurrency),
    )
    if ours is None or theirs is None:
        return f"not measured (needs ours and {peer} at c={concurrency})"
    a, b = ours.median, theirs.median
    met = a.ok_rps >= 2 * b.ok_rps and a.p99_ms <= b.p99_ms and ours.errors == 0
    return (
        f"{'MET' if met else 'NOT MET'}: at c={concurrency} ours {a.ok_rps:,.0f} req/s vs "
        f"{peer} {b.ok_rps:,.0f} ({ratio(a.ok_rps, b.ok_rps)}, target >= 2x); "
        f"p99 {a.p99_ms:.2f} ms vs {b.p99_ms:.2f} ms (target: no worse); "
        f"errors ours {ours.errors}, {peer} {theirs.errors}"
        + ("; NOISY: every run of this point was disturbed" if ours.noisy or theirs.noisy else "")
    )


def render_markdown(run: Run) -> str:
    """The results section (facts and tables); RESULTS.md adds the reading."""
    s, m = run.settings, run.machine
    pinning = (
        f"each server's process tree pinned to core {SERVER_CORE} "
        f"(`taskset -c {SERVER_CORE} <server command>`), wrk to core {WRK_CORE} "
        f"(`taskset -c {WRK_CORE} wrk -t1 ...`)"
        if s["pinned"]
        else "no CPU pinning (workers > 1 or fewer than 2 cores)"
    )
    parts = [
        f"Command: `{run.command}`",
        "",
        f"- Machine: {m['cores']} cores ({m['cpu']}), Linux {m['kernel']}, Python {m['python']}, "
        f"{m['wrk']}; load average at start {m['loadavg_at_start']}",
        f"- Pinning: {pinning}",
        f"- Load: wrk, 1 thread, keep-alive connections, `--timeout {WRK_TIMEOUT}`; "
        f"{s['duration']} s per point after a {s['warmup']} s warm-up at c=8 per server and "
        f"route; {s['rounds']} rounds (server order rotated). A run is disturbed when other "
        f"processes took more than {s['max_other_cpu']:g}% of the server's core; it is "
        f"retried up to {s['retries']} times per round after waiting up to "
        f"{s['quiet_wait']:g} s for a quiet second. Tables show the median undisturbed run, "
        "± half the min-max spread of the undisturbed runs' req/s; † marks a point whose "
        "every run was disturbed (all runs used)",
        f"- Worker processes per server: {s['workers']}",
    ]
    for side, versions in run.versions.items():
        listed = ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
        commit = (
            f" (commit {m['deployer_commit']})" if side == "ours" and "deployer_commit" in m else ""
        )
        parts.append(f"- {side} venv: {listed}{commit}")
    parts += [f"- {note}" for note in run.notes]
    titles = {
        "invocations": '`POST /invocations`, body `{"instances": [[5.1, 3.5, 1.4, 0.2]]}`',
        "oip": f"`POST {PATHS['oip']}` (OIP v2), body `{json.dumps(BODIES['oip'])}`",
    }
    for protocol, peer in COMPARISONS:
        if comparison_rows(run, protocol, peer):
            tables = comparison_tables(run, protocol, peer)
            parts += ["", f"### ours vs {peer}: {titles[protocol]}", "", tables]
    parts += ["", f"Target (issue 2): {target_verdict(run)}"]
    return "\n".join(parts) + "\n"


def print_summary(run: Run) -> None:
    print()
    for protocol, peer in COMPARISONS:
        rows = comparison_rows(run, protocol, peer)
        if not rows:
            continue
        print(f"ours vs {peer} ({PATHS[protocol]}), median of undisturbed runs")
        print(
            f"{'c':>4} {'ours/s':>13} {'peer/s':>13} {'ratio':>7} {'p50 ours':>9} "
            f"{'p50 peer':>9} {'p99 ours':>9} {'p99 peer':>9} {'p99 ratio':>9}  errors"
        )
        for r in rows:
            print(
                f"{r[0]:>4} {r[1]:>13} {r[2]:>13} {r[3]:>7} {r[4]:>9} {r[5]:>9} "
                f"{r[6]:>9} {r[7]:>9} {r[8]:>9}  {r[9]}"
            )
        print()
    print("target:", target_verdict(run))


# --- main ----------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per point (10)")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(c) for c in s.split(",")],
        default=[1, 8, 32, 128],
        help="comma-separated connection counts (1,8,32,128)",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes per server (1)")
    parser.add_argument("--rounds", type=int, default=3, help="repeat everything N times (3)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per route (3)")
    parser.add_argument(
        "--max-other-cpu",
        type=float,
        default=10.0,
        help="a run is disturbed when other processes took more than this %% of the "
        "server's core; disturbed runs are retried and left out of the tables (10)",
    )
    parser.add_argument(
        "--retries", type=int, default=2, help="extra runs of a disturbed point per round (2)"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="seconds to wait for a quiet machine before each run (60)",
    )
    parser.add_argument(
        "--servers", default="ours,mlflow,mlserver", help="which servers to run (all three)"
    )
    parser.add_argument(
        "--skip-setup", action="store_true", help="reuse the peers venv and models as they are"
    )
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="seconds (180)")
    parser.add_argument("--json", type=Path, help="write every run and the facts here")
    parser.add_argument(
        "--report",
        type=Path,
        metavar="JSON",
        help="measure nothing: print and write the tables of a run saved with --json",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        default=WORK / "serving.md",
        help="write the results section here (benchmarks/.work/serving.md)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.servers.split(",")) - set(BUILDERS)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    return args


def write_bodies() -> dict[str, Path]:
    bodies = {}
    for protocol, body in BODIES.items():
        path = WORK / f"body-{protocol}.json"
        path.write_text(json.dumps(body))
        bodies[protocol] = path
    return bodies


def check_ready_to_run(skip_setup: bool) -> None:
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install wrk util-linux)")
    if skip_setup and not (WORK / "ours.joblib").exists():
        raise SystemExit("--skip-setup, but no models in benchmarks/.work: run without it once")


def new_run(argv: list[str], args: argparse.Namespace, pin: bool, notes: list[str]) -> Run:
    return Run(
        command=" ".join([".venv/bin/python", "benchmarks/serving.py", *argv]),
        machine=machine_facts(),
        versions={"ours": venv_versions(OUR_PYTHON), "peers": venv_versions(PEER_PYTHON)},
        settings={**run_settings(args, pin), "workers": args.workers},
        notes=notes,
    )


def run_settings(args: argparse.Namespace, pin: bool) -> dict[str, Any]:
    """The settings a Run records: what every point was measured with."""
    return {
        "duration": args.duration,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "max_other_cpu": args.max_other_cpu,
        "retries": args.retries,
        "quiet_wait": args.quiet_wait,
        "pinned": pin,
    }


def round_plan(args: argparse.Namespace, pin: bool, number: int, bodies: dict[str, Path]) -> Plan:
    """What round ``number`` measures, from the command line's options."""
    return Plan(
        concurrency=args.concurrency,
        duration_s=args.duration,
        warmup_s=args.warmup,
        pin=pin,
        round=number,
        bodies=bodies,
        startup_timeout_s=args.startup_timeout,
        max_other_cpu=args.max_other_cpu,
        retries=args.retries,
        quiet_wait_s=args.quiet_wait,
    )


def runnable_servers(requested: list[str], run: Run) -> list[str]:
    if "mlserver" in requested and not (PEERS_VENV / "bin" / "mlserver").exists():
        run.notes.append("MLServer is not installed in the peers venv: skipped")
        return [s for s in requested if s != "mlserver"]
    return requested


def run_rounds(run: Run, servers: list[str], args: argparse.Namespace, pin: bool) -> None:
    """Every server in turn, ``--rounds`` times, rotating the order each round."""
    bodies = write_bodies()
    for number in range(args.rounds):
        plan = round_plan(args, pin, number, bodies)
        order = servers[number % len(servers) :] + servers[: number % len(servers)]
        print(f"round {number + 1}/{args.rounds}: {', '.join(order)}", flush=True)
        for name in order:
            spec = BUILDERS[name](args.workers)
            print(f"{name}: {' '.join(spec.command)}", flush=True)
            try:
                run.points += benchmark_server(spec, protocols_to_run(name, servers), plan)
            except RuntimeError as exc:
                print(f"  {name} FAILED: {exc}", flush=True)
                run.notes.append(f"{name} failed in round {number + 1}: {str(exc)[:1500]}")


def load_run(path: Path, max_other_cpu: float) -> Run:
    """A run saved with --json, re-summarised with ``max_other_cpu``."""
    data = json.loads(path.read_text())
    data.pop("target", None)
    points = [Point(**p) for p in data.pop("points")]
    run = Run(**data, points=points)
    run.settings["max_other_cpu"] = max_other_cpu
    return run


def report(run: Run, args: argparse.Namespace) -> None:
    """Print the summary and write the markdown (and JSON when asked)."""
    print_summary(run)
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(render_markdown(run))
    print(f"\nwrote {args.markdown}")
    if args.json:
        payload = {**asdict(run), "target": target_verdict(run)}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.report:
        report(load_run(args.report, args.max_other_cpu), args)
        return 0
    check_ready_to_run(args.skip_setup)
    WORK.mkdir(parents=True, exist_ok=True)
    notes = [] if args.skip_setup else ensure_peers_venv()
    if not args.skip_setup:
        print(f"trained: {json.dumps(train_models())}", flush=True)
    pin = args.workers == 1 and (os.cpu_count() or 1) >= 2
    run = new_run(argv, args, pin, notes)
    servers = runnable_servers(args.servers.split(","), run)
    run_rounds(run, servers, args, pin)
    report(run, args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
