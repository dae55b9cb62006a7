"""docs/images/dashboard.png: the Grafana dashboard (``deployer dashboard render``) drawn by
``deployer dashboard preview`` from a real Prometheus scraping a live local deployment.

    flock /tmp/docker.lock .venv/bin/python benchmarks/dashboard_picture.py \
        [--minutes 4] [--out docs/images/dashboard.png]

It trains the iris example, pushes it to a ``local`` target (the model's container behind
its front), serves the router.yaml that push wrote with the built-in router, starts
Prometheus (Debian's) scraping both every 2 s, and sends requests for ``--minutes`` from a
few threads: most through the router, some straight to the front, a few malformed
(400). Then it takes the picture and removes everything it made: the
router, Prometheus, the local target (``deployer destroy``), its images.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
BASE_IMAGE = os.environ.get("DEPLOYER_BASE_IMAGE", "deployer-base:bookworm-py311")
NAME = "dashboard-demo"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def deployer(*args: str, cwd: Path) -> None:
    env = {**os.environ, "DEPLOYER_BASE_IMAGE": BASE_IMAGE, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "deployer", *args], cwd=cwd, env=env, check=True)


def image_tags() -> set[str]:
    listed = subprocess.run(
        ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {t for t in listed.stdout.split() if not t.endswith(":<none>")}


def wait_for(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} never answered 200")


def load(urls: list[str], stop: threading.Event, seed: int) -> None:
    """Requests until ``stop``: iris rows, 3% malformed."""
    rng = random.Random(seed)
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            roll = rng.random()
            if roll < 0.03:
                body: object = {"instances": [["not", "a", "number"]]}
            else:
                rows = rng.randint(1, 8)
                row = [rng.uniform(4, 8), rng.uniform(2, 4.5), rng.uniform(1, 7), rng.uniform(0, 2)]
                body = {"instances": [row] * rows}
            url = rng.choice(urls)
            with contextlib.suppress(httpx.TransportError):
                client.post(url, json=body)
            time.sleep(rng.expovariate(40))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--out", type=Path, default=REPO / "docs/images/dashboard.png")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dashboard-demo-"))
    front, router_port, prom_port = free_port(), free_port(), free_port()
    subprocess.run([sys.executable, str(REPO / "examples/iris/train.py"),
                    str(work / "model.joblib")], check=True)  # fmt: skip
    (work / "deployer.yaml").write_text(
        f"name: {NAME}\nmodel: {{path: model.joblib}}\n"
        f"targets:\n  local: {{provider: local, port: {front}}}\n"
    )
    before = image_tags()  # the local front's image, built by push, goes too
    processes: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        deployer("push", "--to", "local", "--reason", "dashboard picture", cwd=work)
        router = subprocess.Popen(
            [sys.executable, "-m", "deployer", "router", "serve", "router.yaml",
             "--host", "127.0.0.1", "--port", str(router_port)],
            cwd=work, env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        processes.append(router)
        wait_for(f"http://127.0.0.1:{router_port}/-/router/ready")
        config = {
            "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
            "scrape_configs": [
                {"job_name": NAME, "static_configs": [{"targets": [f"127.0.0.1:{front}"]}]},
                {"job_name": "router",
                 "static_configs": [{"targets": [f"127.0.0.1:{router_port}"]}]},
            ],
        }  # fmt: skip
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={work / 'prometheus.yml'}",
             f"--storage.tsdb.path={work / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        processes.append(prometheus)
        wait_for(f"http://127.0.0.1:{prom_port}/-/ready")
        urls = [f"http://127.0.0.1:{router_port}/invocations"] * 3 + [
            f"http://127.0.0.1:{front}/invocations"
        ]
        for seed in range(4):
            thread = threading.Thread(target=load, args=(urls, stop, seed), daemon=True)
            thread.start()
            threads.append(thread)
        time.sleep(args.minutes * 60)
        stop.set()
        for thread in threads:
            thread.join()
        preview = work / "preview"
        deployer("dashboard", "preview", "--prometheus", f"http://127.0.0.1:{prom_port}",
                 "--out", str(preview), "--minutes", str(args.minutes), "--step", "2",
                 "--png", cwd=work)  # fmt: skip
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(preview / "dashboard.png", args.out)
        print(json.dumps({"wrote": str(args.out)}))
    finally:
        stop.set()
        for process in reversed(processes):
            process.terminate()
            process.wait(30)
        deployer("destroy", "--to", "local", "--yes", cwd=work)
        tags = [t for t in image_tags() if t.startswith(f"{NAME}:") or t not in before]
        if tags:
            subprocess.run(["docker", "image", "rm", *tags], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
