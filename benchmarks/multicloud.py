"""Multi-cloud push (issue 4): is ``push --to aws,gcp,azure`` as fast as its slowest target?

    DEPLOYER_BASE_IMAGE=deployer-base:bookworm-py311 .venv/bin/python benchmarks/multicloud.py \
        [--rounds 3] [--aws-delay 12] [--gcp-delay 9] [--azure-delay 7] [--poll 0.5] \
        [--json out.json] [--no-results]

The three providers' own fakes (providers/*/tests: moto for SageMaker, the gRPC Vertex AI,
the HTTPS Azure Resource Manager) run in a child process, so their servers do not share
this process's GIL with deployer, and answer the real SDKs on 127.0.0.1 with real
registries and real containers of the image behind each cloud's invoke path. Each cloud
gets an artificial control-plane delay, scaled down from real clouds with realistic
ratios: a SageMaker endpoint stays ``Creating`` for --aws-delay seconds, a Vertex
DeployModel operation runs --gcp-delay seconds, an Azure deployment provisions for
--azure-delay seconds. The delay includes the cloud's own start of the model container
(the operation ends at max(delay, container ready)), so everything above it is
deployer's: its overhead per target.

Each round pushes the iris image to each target alone, then to all three at once (fresh
targets: every run ends with ``destroy``). The image is built and published once before
the rounds, so publishing is the registry push of an image the registry already has.
Reports medians over the rounds and appends them to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
for _folder in (
    "examples/iris",
    "tests",
    *(f"providers/{p}/tests" for p in ("aws", "gcp", "azure")),
):
    sys.path.insert(0, str(REPO / _folder))
os.environ.setdefault("DEPLOYER_BASE_IMAGE", "deployer-base:bookworm-py311")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from deployer import Project  # noqa: E402
from deployer.orchestrate import JournalEntry, PushResult  # noqa: E402

TARGETS = ("aws", "gcp", "azure")
ALL = ",".join(TARGETS)
PROJECT = "iris-multicloud"
TARGET_RATIO = 1.15
WORK = REPO / "benchmarks" / ".work" / "multicloud"
RESULTS = REPO / "benchmarks" / "RESULTS.md"
TIMEOUT = 300.0


@dataclass(frozen=True)
class Registry:
    """A docker-registry on 127.0.0.1 (``host`` is ``127.0.0.1:PORT``) and its one user."""

    host: str
    username: str
    password: str

    @property
    def auth(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}


@dataclass(frozen=True)
class Settings:
    """What the child process needs to start the fake clouds."""

    delays: dict[str, float]
    registries: dict[str, Registry]
    cert: Path
    key: Path
    poll: float


# == the child process: three fake clouds with artificial delays ==========================


class DelayedRuntime:
    """A fake's container runtime whose ``start`` lasts at least ``delay`` seconds.

    It wraps the providers' own DockerRuntime (Vertex or Azure): the real container is
    started, then the cloud's operation is held until ``delay`` has passed since it began.
    """

    def __init__(self, inner: Any, delay: float, starts: list[float]) -> None:
        self.inner = inner
        self.delay = delay
        self.starts = starts

    def start(self, *args: Any) -> None:
        began = time.monotonic()
        self.inner.start(*args)
        took = time.monotonic() - began
        self.starts.append(took)
        time.sleep(max(0.0, self.delay - took))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Creating(list[str]):
    """``Script.states`` for the AWS fake: "Creating" until the delay is over and the
    model container is up (the fake pops one state per DescribeEndpoint)."""

    def __init__(self, seconds: float, ready: threading.Event) -> None:
        super().__init__(["Creating"])
        self.deadline = time.monotonic() + seconds
        self.ready = ready

    def __bool__(self) -> bool:
        return time.monotonic() < self.deadline or not self.ready.is_set()

    def pop(self, index: Any = -1) -> str:
        return "Creating"


def slow_sagemaker_creates(fake: Any, delay: float, starts: list[float]) -> None:
    """Every CreateEndpoint stays Creating for ``delay`` s while the container starts.

    SageMaker starts the model container while the endpoint is Creating; the AWS fake
    starts it on the first InvokeEndpoint, so it is started here, in the background.
    """
    from aws_fake import Script
    from moto.sagemaker.models import SageMakerModelBackend

    created = SageMakerModelBackend.create_endpoint  # the fake's own version

    def create_endpoint(
        backend: Any, endpoint_name: str, endpoint_config_name: str, tags: Any
    ) -> Any:
        endpoint = created(backend, endpoint_name, endpoint_config_name, tags)
        ready = threading.Event()
        image = _sagemaker_image(backend, endpoint_config_name)
        warm = threading.Thread(target=_warm, args=(fake, image, ready, starts), daemon=True)
        warm.start()
        fake.pending[endpoint_name].script = Script(Creating(delay, ready), "InService")
        return endpoint

    # undone by fake.stop(), which puts moto's own method back
    SageMakerModelBackend.create_endpoint = create_endpoint  # type: ignore[method-assign,assignment]


def _sagemaker_image(backend: Any, config_name: str) -> str:
    config = backend.endpoint_configs[config_name]
    model = backend._models[config.production_variants[0]["ModelName"]]
    return str(model.primary_container["Image"])


def _warm(fake: Any, image: str, ready: threading.Event, starts: list[float]) -> None:
    began = time.monotonic()
    try:
        fake._container_url(image)
        starts.append(time.monotonic() - began)
    finally:
        ready.set()


@dataclass
class FakeClouds:
    """The three fakes (in the child process) and their container start times."""

    aws: Any
    vertex: Any
    vertex_runtime: Any
    azure: Any
    starts: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def start(cls, settings: Settings) -> FakeClouds:
        import azure_runtime
        import vertex_runtime
        from aws_fake import FakeAws
        from azure_fake import FakeAzureML
        from azure_tls import TLSCertificate
        from vertex_fake import FakeVertex
        from vertex_support import TOKEN

        from deployer.image.engine import docker_client

        docker = docker_client()
        starts: dict[str, list[float]] = {cloud: [] for cloud in TARGETS}
        delays, registries = settings.delays, settings.registries
        aws = FakeAws().start()
        aws.registry, aws.docker = registries["aws"], docker
        slow_sagemaker_creates(aws, delays["aws"], starts["aws"])
        inner = vertex_runtime.DockerRuntime(docker, registries["gcp"].auth)
        runtime = DelayedRuntime(inner, delays["gcp"], starts["gcp"])
        vertex = FakeVertex(settings.cert.read_bytes(), settings.key.read_bytes(), runtime)
        vertex.start()
        vertex.expected_token = TOKEN
        acr = registries["azure"]
        inner = azure_runtime.DockerRuntime(docker, acr.auth)
        azure = FakeAzureML(
            TLSCertificate(settings.cert, settings.key),
            (acr.host, acr.username, acr.password),
            runtime=DelayedRuntime(inner, delays["azure"], starts["azure"]),
        )
        return cls(aws, vertex, runtime, azure, starts)

    def targets(self, settings: Settings) -> dict[str, dict[str, Any]]:
        """deployer.yaml ``targets`` pointing the real SDKs at these fakes."""
        from azure_support import target_options
        from vertex_support import PROJECT_ID, options

        gar = f"{settings.registries['gcp'].host}/{PROJECT_ID}/deployer"
        poll = settings.poll
        return {
            "aws": self.aws.options(instance_type="ml.c5.large", poll_interval=poll),
            "gcp": options(self.vertex.address, registry=gar, poll_interval=poll),
            "azure": target_options(self.azure, poll_interval=poll),
        }

    def clean(self) -> dict[str, list[float]]:
        """Remove the AWS fake's containers (the others go with destroy); the start times."""
        self.aws.remove_containers()
        taken = {cloud: list(times) for cloud, times in self.starts.items()}
        for times in self.starts.values():
            times.clear()
        return taken

    def stop(self) -> None:
        """Stop the servers and remove every container they started."""
        self.azure.close()
        self.vertex.stop()
        self.vertex_runtime.close()
        self.aws.stop()


def serve_clouds(connection: Connection, settings: Settings) -> None:
    """The child process: start the fakes, send the targets, then obey clean/stop."""
    try:
        clouds = FakeClouds.start(settings)
    except Exception as exc:
        connection.send(("error", f"{type(exc).__name__}: {exc}"))
        raise
    try:
        connection.send(("ready", clouds.targets(settings)))
        while (command := connection.recv()) != "stop":
            if command == "clean":
                connection.send(clouds.clean())
    finally:
        clouds.stop()
        connection.send("stopped")


# == this process: registries, credentials, the project ===================================


def start_registry(folder: Path, username: str, password: str) -> tuple[Registry, Any]:
    """Debian's docker-registry with htpasswd auth on a free port; (registry, process)."""
    import bcrypt

    from deployer.image.containers import free_port

    binary = shutil.which("docker-registry")
    if binary is None:
        raise SystemExit("docker-registry is missing: apt-get install docker-registry")
    folder.mkdir(parents=True, exist_ok=True)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    (folder / "htpasswd").write_text(f"{username}:{hashed}\n")
    port = free_port()
    (folder / "config.yml").write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {folder / 'data'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
        f"auth: {{htpasswd: {{realm: bench, path: {folder / 'htpasswd'}}}}}\n"
    )
    process = subprocess.Popen(
        [binary, "serve", str(folder / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/v2/").status_code == 401:
                return Registry(f"127.0.0.1:{port}", username, password), process
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"docker-registry on 127.0.0.1:{port} did not start")


@contextlib.contextmanager
def registries(folder: Path) -> Iterator[dict[str, Registry]]:
    """ECR, Artifact Registry (token as the password of oauth2accesstoken) and ACR."""
    from vertex_support import REGISTRY_USER, TOKEN

    users = {
        "aws": ("ecr-user", "ecr-secret"),
        "gcp": (REGISTRY_USER, TOKEN),
        "azure": ("acr-user", "acr-secret"),
    }
    processes = []
    found: dict[str, Registry] = {}
    try:
        for cloud, (username, password) in users.items():
            found[cloud], process = start_registry(folder / cloud, username, password)
            processes.append(process)
        yield found
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        remove_references({registry.host for registry in found.values()})


def remove_references(hosts: set[str]) -> None:
    """Remove the tags and digests that publishing to ``hosts`` left (the layers stay)."""
    from deployer.image.engine import docker_client

    docker = docker_client()
    for image in docker.images.list():
        for ref in [*image.tags, *image.attrs.get("RepoDigests", [])]:
            if ref.split("/")[0] in hosts:
                with contextlib.suppress(Exception):
                    docker.images.remove(ref, noprune=True)


def use_test_credentials(cert: Path) -> None:
    """The SDKs' test credentials (nothing leaves 127.0.0.1); trust the fakes' certificate.

    Must run before any TLS channel exists: gRPC reads its roots once per process.
    """
    import google.auth
    from aws_test_env import CREDENTIAL_VARIABLES, fake_aws_environment
    from azure_support import FakeCredential
    from vertex_support import PROJECT_ID, TOKEN, FakeCredentials

    import deployer_azure.auth

    for name in CREDENTIAL_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(fake_aws_environment(WORK / "no-aws-config"))
    os.environ.update(
        REQUESTS_CA_BUNDLE=str(cert),
        GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=str(cert),
    )
    azure_credential = FakeCredential()
    google_credentials = FakeCredentials(TOKEN)
    deployer_azure.auth.make_credential = lambda: azure_credential
    google.auth.default = lambda *_a, **_k: (google_credentials, PROJECT_ID)


@contextlib.contextmanager
def fake_clouds(settings: Settings) -> Iterator[tuple[Connection, dict[str, Any]]]:
    """The child process serving the fakes; (its connection, the targets)."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=serve_clouds, args=(theirs, settings), name="fake-clouds")
    child.start()
    try:
        if not ours.poll(120):
            raise SystemExit("the fake clouds did not start within 120 s")
        state, targets = ours.recv()
        if state != "ready":
            raise SystemExit(f"the fake clouds did not start: {targets}")
        yield ours, targets
    finally:
        with contextlib.suppress(OSError, EOFError):
            ours.send("stop")
            if ours.poll(60):
                ours.recv()
        child.join(timeout=30)
        if child.is_alive():
            child.kill()


def write_project(folder: Path, targets: dict[str, dict[str, Any]]) -> Project:
    """The iris model (examples/iris/train.py) and a deployer.yaml with the three targets."""
    from train import train

    train(folder / "model.joblib")
    config = {"name": PROJECT, "model": {"path": "model.joblib"}, "targets": targets}
    (folder / "deployer.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return Project.load(folder / "deployer.yaml")


# == measuring ============================================================================


@dataclass
class TargetTiming:
    """One target's seconds in one push, by stage (from the journal)."""

    total: float
    read: float  # the live version, before anything changes
    publish: float  # registry push of an image the registry already has
    deploy: float  # the API calls that start the cloud's work
    wait: float  # until healthy, the artificial delay included
    smoke: float  # one prediction through the cloud's invoke path


@dataclass
class Run:
    """One ``Project.push`` to ``name`` (one target or all three)."""

    name: str
    wall: float  # the whole push: cached build, then the targets
    phase: float  # the targets only: from the journal's start to its last entry
    targets: dict[str, TargetTiming]
    containers: dict[str, list[float]]  # the fakes' container start times


def stage_times(journal: list[JournalEntry], target: str, total: float) -> TargetTiming:
    """Split ``target``'s ``total`` seconds into its stages."""
    at: dict[str, float] = {}
    for entry in journal:
        if entry.target == target:
            at.setdefault(entry.step, entry.seconds)
    end = at["smoke test passed"]
    start = end - total
    return TargetTiming(
        total=total,
        read=at["publish"] - start,
        publish=at["published"] - at["publish"],
        deploy=at["deployed"] - at["deploy"],
        wait=at["smoke test"] - at["wait"],
        smoke=end - at["smoke test"],
    )


def push_once(project: Project, targets: list[str]) -> tuple[PushResult, float]:
    """``Project.push`` to ``targets`` (exits if any fails); the result and its wall time."""
    began = time.monotonic()
    result = project.push(targets, timeout=TIMEOUT, journal_dir=None)
    wall = time.monotonic() - began
    if not result.ok:
        errors = {t.target: t.error for t in result.targets if not t.ok}
        raise SystemExit(f"push --to {','.join(targets)} failed: {errors}")
    return result, wall


def measure(project: Project, connection: Connection, name: str) -> Run:
    """Push to ``name`` on fresh targets, then destroy them; the timings."""
    targets = name.split(",")
    try:
        result, wall = push_once(project, targets)
    finally:
        project.destroy(targets)
        connection.send("clean")
        containers = connection.recv()
    phase = max(entry.seconds for entry in result.journal)
    timings = {t.target: stage_times(result.journal, t.target, t.seconds) for t in result.targets}
    return Run(name, wall, phase, timings, containers)


def warm_up(project: Project, connection: Connection) -> float:
    """Build, publish to every registry and load every SDK once; the seconds it took."""
    began = time.monotonic()
    push_once(project, list(TARGETS))
    project.destroy(list(TARGETS))
    connection.send("clean")
    connection.recv()
    return time.monotonic() - began


def schedule(rounds: int) -> Iterator[tuple[int, str]]:
    """Each round: every target alone (order rotated per round), then all three."""
    for number in range(rounds):
        shift = number % len(TARGETS)
        for name in (*TARGETS[shift:], *TARGETS[:shift], ALL):
            yield number, name


# == reporting ============================================================================


def median(values: list[float]) -> float:
    """The median, NaN for no values."""
    return statistics.median(values) if values else float("nan")


STAGES = ("total", "read", "publish", "deploy", "wait", "smoke")


def stage_medians(runs: list[Run]) -> dict[str, dict[str, float]]:
    """Per target, the median of each stage over ``runs`` (which all pushed to it)."""
    return {
        t: {stage: median([getattr(r.targets[t], stage) for r in runs]) for stage in STAGES}
        for t in TARGETS
        if all(t in r.targets for r in runs)
    }


def summarize(runs: list[Run], delays: dict[str, float]) -> dict[str, Any]:
    """Medians over the rounds: walls, the ratio, each target's overhead by stage."""
    names = [*TARGETS, ALL]
    walls = {n: [r.wall for r in runs if r.name == n] for n in names}
    phases = {n: median([r.phase for r in runs if r.name == n]) for n in names}
    slowest = max(TARGETS, key=lambda t: median(walls[t]))
    alone = {}
    for target in TARGETS:
        alone.update(stage_medians([r for r in runs if r.name == target]))
    containers = {t: median([s for r in runs for s in r.containers.get(t, [])]) for t in TARGETS}
    return {
        "walls": {n: {"median": median(w), "min": min(w), "max": max(w)} for n, w in walls.items()},
        "phases": phases,
        "slowest": slowest,
        "ratio": median(walls[ALL]) / median(walls[slowest]),
        "phase_ratio": phases[ALL] / max(phases[t] for t in TARGETS),
        "stages": {"alone": alone, "together": stage_medians([r for r in runs if r.name == ALL])},
        "containers": containers,
        "delays": delays,
        "rounds": len(walls[ALL]),
    }


def wall_table(summary: dict[str, Any]) -> list[str]:
    """Markdown rows: each push's wall time and targets phase."""
    lines = [
        "| push | wall s (median) | min..max | targets phase s | slowest delay s |",
        "|---|---|---|---|---|",
    ]
    delays = summary["delays"]
    for name, wall in summary["walls"].items():
        delay = max(delays[t] for t in name.split(","))
        lines.append(
            f"| `--to {name}` | {wall['median']:.2f} | {wall['min']:.2f}..{wall['max']:.2f} "
            f"| {summary['phases'][name]:.2f} | {delay:g} |"
        )
    return lines


def overhead_table(summary: dict[str, Any]) -> list[str]:
    """Markdown rows: each target's overhead above its delay, alone and together, by stage."""
    lines = [
        "| target | push | delay s | container start s | target s | overhead s | read live "
        "| publish | deploy calls | wait - delay | smoke test |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for target in TARGETS:
        delay = summary["delays"][target]
        for mode, stages in summary["stages"].items():
            s = stages[target]
            lines.append(
                f"| {target} | {mode} | {delay:g} | {summary['containers'][target]:.2f} "
                f"| {s['total']:.2f} | **{s['total'] - delay:.2f}** | {s['read']:.2f} "
                f"| {s['publish']:.2f} | {s['deploy']:.2f} | {s['wait'] - delay:.2f} "
                f"| {s['smoke']:.2f} |"
            )
    return lines


def verdict(summary: dict[str, Any]) -> str:
    """The ratio to the slowest single target, against the 15% target."""
    ratio, phase_ratio = summary["ratio"], summary["phase_ratio"]
    met = "met" if ratio <= TARGET_RATIO else "MISSED"
    return (
        f"`--to {ALL}` / slowest single target (`--to {summary['slowest']}`): "
        f"**{ratio:.3f}x** wall ({phase_ratio:.3f}x for the targets phase alone); "
        f"target <= {TARGET_RATIO:.2f}x: **{met}**."
    )


EXPLANATION = """\
Overhead = a target's own push seconds (`TargetResult.seconds`: read live, publish,
deploy, wait, smoke test) minus the artificial delay. It is made of:
- *read live*: the provider's first calls (`status()`), which also create its SDK client
  (boto3 client, Vertex gRPC channels over TLS, Azure MLClient);
- *publish*: the registry push of an image every registry already has (docker checks each
  layer, uploads nothing, and the manifest is put again), plus ECR's token, Azure's
  workspace keys, Google's access token;
- *deploy calls*: the API calls before the cloud's work starts (SageMaker: model,
  endpoint config, endpoint; Vertex: create endpoint and upload model, each a
  long-running operation polled at the poll interval, then DeployModel; Azure: endpoint
  and environment, then the deployment);
- *wait - delay*: polling granularity (up to one poll interval after the cloud is done)
  and the steps after provisioning: Vertex's traffic promotion and labels, Azure's smoke
  prediction through the new deployment and its traffic switch, SageMaker's tags and
  pruning;
- *smoke test*: one prediction through the cloud's invoke path (for SageMaker the fake
  starts the model container during `Creating`, as SageMaker does).
The container start column is the fakes' own time to pull and start the model container;
it is inside the delay (the cloud's operation ends at max(delay, container ready)).
*Targets phase*: from the journal's start to its last entry (the push without the cached
build of the image)."""


def render(summary: dict[str, Any], command: str, warm_up_s: float) -> str:
    """The RESULTS.md section."""
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    intro = (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {machine}; "
        f"{summary['rounds']} rounds, medians. Fakes of the three clouds in a child process "
        "(real SDKs over the wire, real registries and containers on 127.0.0.1); the image "
        f"was built and published to every registry once beforehand, in {warm_up_s:.0f}s."
    )
    lines = [
        "## Multi-cloud push (issue 4)",
        "",
        textwrap.fill(intro, width=90),
        "",
        "```",
        command,
        "```",
        "",
        *wall_table(summary),
        "",
        verdict(summary),
        "",
        *overhead_table(summary),
        "",
        EXPLANATION,
        "",
    ]
    return "\n".join(lines)


def append_results(section: str, path: Path = RESULTS) -> None:
    """Append ``section`` (re-reading the file now: others append sections too)."""
    if not path.exists() or not path.read_text().strip():
        path.write_text("# Benchmark results\n")
    separator = "\n" if path.read_text().endswith("\n") else "\n\n"
    with path.open("a") as out:
        out.write(separator + "\n" + section)


# == main =================================================================================


def parse_args() -> argparse.Namespace:
    """Rounds, delays, poll interval and outputs (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--aws-delay", type=float, default=12.0, help="SageMaker Creating, s")
    parser.add_argument("--gcp-delay", type=float, default=9.0, help="Vertex DeployModel, s")
    parser.add_argument("--azure-delay", type=float, default=7.0, help="Azure provisioning, s")
    parser.add_argument("--poll", type=float, default=0.5, help="every target's poll_interval")
    parser.add_argument("--json", type=Path, help="also write the runs and summary here")
    parser.add_argument("--no-results", action="store_true", help="do not append to RESULTS.md")
    return parser.parse_args()


def run_benchmark(args: argparse.Namespace) -> tuple[list[Run], float, dict[str, float]]:
    """Registries, credentials, the fakes, the warm-up, then every round; the runs."""
    from azure_tls import make_certificate

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    delays = {"aws": args.aws_delay, "gcp": args.gcp_delay, "azure": args.azure_delay}
    certificate = make_certificate(WORK / "tls")
    use_test_credentials(certificate.cert)
    with registries(WORK / "registries") as found:
        settings = Settings(delays, found, certificate.cert, certificate.key, args.poll)
        with fake_clouds(settings) as (connection, targets):
            project = write_project(WORK, targets)
            say("warming up: build, publish to the three registries, load the SDKs")
            warm_up_s = warm_up(project, connection)
            runs = []
            for number, name in schedule(args.rounds):
                runs.append(measure(project, connection, name))
                say(f"round {number + 1}: --to {name}: {runs[-1].wall:.2f} s")
    return runs, warm_up_s, delays


def say(message: str) -> None:
    """Progress on stderr (stdout carries the report)."""
    print(message, file=sys.stderr, flush=True)


def main() -> int:
    args = parse_args()
    command = "DEPLOYER_BASE_IMAGE=deployer-base:bookworm-py311 .venv/bin/python "
    command += shlex.join(["benchmarks/multicloud.py", *sys.argv[1:]])
    runs, warm_up_s, delays = run_benchmark(args)
    summary = summarize(runs, delays)
    section = render(summary, command, warm_up_s)
    print(section)
    if args.json:
        data = {"runs": [asdict(r) for r in runs], "summary": summary}
        args.json.write_text(json.dumps(data, indent=2))
    if not args.no_results:
        append_results(section)
    return 0 if summary["ratio"] <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
