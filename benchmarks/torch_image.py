"""Image sizes for a PyTorch model: ours vs BentoML, LitServe and TorchServe at their smallest
(issue 16).

    .venv/bin/python benchmarks/torch_image.py [--images ours,bentoml,litserve,torchserve]
        [--json out.json]

Ours: ``deployer build`` of the TorchScript MLP of benchmarks/torch_serving.py (signature in
deployer.yaml), on the local base image (DEPLOYER_BASE_IMAGE, default
deployer-base:bookworm-py311).

Peers: neither ``bentoml containerize`` nor a LitServe Dockerfile can build here (they start
from Docker Hub images and run pip inside the build, and this machine reaches neither), so
each peer gets the smallest image it could have: the SAME base image, a venv with only the
peer's package and torch==2.13.0 (CPU) installed from wheels downloaded on the host, plus the
service file and the model, in a two-stage build so no wheel stays in a layer. A real
``bentoml containerize`` image is larger (it adds its own base, build tools and the bento
layout); these are lower bounds, which makes the comparison harder for us, not easier.

TorchServe the same way (its own Dockerfile starts from Docker Hub's ubuntu image and builds
from source): the venv gets torchserve (whose wheel carries its Java front end), torch and
PyYAML (which its worker imports but its wheel does not declare); a throwaway venv of the
first stage runs torch-model-archiver to pack the MLP with the benchmark's handler and
batching config (``--archive-format no-archive``), and only the model store reaches the
final image. TorchServe needs a Java 17+ runtime:
``openjdk-17-jre-headless`` from Debian's packages (``--no-install-recommends``, apt lists
removed), installed in the final stage. The script then starts the image (no network) and
checks that TorchServe answers a prediction inside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torchserve_peer

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BASE = os.environ.setdefault("DEPLOYER_BASE_IMAGE", "deployer-base:bookworm-py311")
TORCH = "torch==2.13.0"
PEERS = {
    "bentoml": ("bentoml==1.4.40", "bentoml_service.py"),
    "litserve": ("litserve==0.2.19", "litserve_server.py"),
    "torchserve": ("torchserve==0.12.0", "torchserve_handler.py"),
}
ARCHIVER = "torch-model-archiver==0.12.0"
# TorchServe's Python worker imports yaml, which its wheel does not declare (its own install
# script adds it from requirements/common.txt); without it the worker never starts.
TORCHSERVE_UNDECLARED = "pyyaml==6.0.4"
JRE = "openjdk-17-jre-headless"
IMAGES = ("ours", *PEERS)
DEPLOYER_YAML = """\
name: torch-bench
model:
  path: mlp.pt
  flavor: pytorch
  signature:
    inputs:
      - {name: x, datatype: FP32, shape: [-1, 64]}
    outputs:
      - {name: logits, datatype: FP32, shape: [-1, 10]}
"""
PEER_DOCKERFILE = """\
FROM {base} AS install
COPY wheels/ /tmp/wheels/
RUN python3 -m venv /opt/venv \\
 && /opt/venv/bin/python -m pip install --no-index --no-cache-dir --disable-pip-version-check \\
      --find-links /tmp/wheels {requirements}
FROM {base}
COPY --from=install /opt/venv /opt/venv
COPY {service} mlp.pt /opt/app/
ENV MODEL_PATH=/opt/app/mlp.pt PATH=/opt/venv/bin:$PATH
"""
PIP_INSTALL = (
    "python -m pip install --no-index --no-cache-dir --disable-pip-version-check "
    "--find-links /tmp/wheels"
)
TORCHSERVE_DOCKERFILE = """\
FROM {base} AS install
COPY wheels/ /tmp/wheels/
COPY {service} mlp.pt model-config.yaml /tmp/model/
RUN python3 -m venv /opt/venv && /opt/venv/bin/{pip} {requirements} \\
 && python3 -m venv /tmp/archiver && /tmp/archiver/bin/{pip} {archiver} \\
 && mkdir -p /opt/app/store \\
 && /tmp/archiver/bin/torch-model-archiver --model-name mlp --version 1.0 \\
      --serialized-file /tmp/model/mlp.pt --handler /tmp/model/{service} \\
      --config-file /tmp/model/model-config.yaml --archive-format no-archive \\
      --export-path /opt/app/store
FROM {base}
RUN mkdir -p /usr/share/man/man1 && apt-get update \\
 && apt-get install -y --no-install-recommends {jre} \\
 && rm -rf /var/lib/apt/lists/*
COPY --from=install /opt/venv /opt/venv
COPY --from=install /opt/app /opt/app
COPY config.properties /opt/app/
ENV PATH=/opt/venv/bin:$PATH OMP_NUM_THREADS=1
CMD ["torchserve", "--start", "--foreground", "--ncs", "--ts-config", "/opt/app/config.properties"]
"""
TORCHSERVE_CONFIG = """\
inference_address=http://0.0.0.0:8080
model_store=/opt/app/store
load_models=mlp
default_workers_per_model=1
disable_token_authorization=true
"""


# Run inside the TorchServe container: POST one row until the model answers 10 logits.
SERVE_CHECK = """\
import json, time, urllib.request
url = "http://127.0.0.1:8080/predictions/mlp"
body = json.dumps({"x": [0.0] * 64}).encode()
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
for _ in range(240):
    try:
        request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        with opener.open(request, timeout=5) as response:
            logits = json.loads(response.read())
        break
    except OSError:
        time.sleep(0.5)
else:
    raise SystemExit(f"no answer from {url} in 2 minutes")
if len(logits) != 10:
    raise SystemExit(f"expected 10 logits, got {logits}")
print("torchserve in the image answered", [round(v, 4) for v in logits[:3]], "...")
"""


def docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"docker {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr}")
    return done.stdout.strip()


def image_size(tag: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag))


def write_model(folder: Path) -> Path:
    """The benchmark's TorchScript MLP (torch from our venv)."""
    path = folder / "mlp.pt"
    subprocess.run([sys.executable, str(HERE / "peers" / "torch_model.py"), str(path)], check=True)
    return path


def ours(folder: Path) -> int:
    """``deployer build`` of the MLP; the image's size. The tag is removed."""
    from deployer import Project

    (folder / "deployer.yaml").write_text(DEPLOYER_YAML)
    image = Project.load(folder / "deployer.yaml").build()
    try:
        return int(image.size)
    finally:
        docker("image", "rm", "-f", image.ref)


def peer_dockerfile(name: str, context: Path) -> str:
    """The peer's Dockerfile; TorchServe's also needs its batching config and server config
    in ``context``."""
    requirement, service = PEERS[name]
    if name != "torchserve":
        return PEER_DOCKERFILE.format(
            base=BASE, requirements=f"{TORCH} {requirement}", service=service
        )
    (context / "model-config.yaml").write_text(torchserve_peer.MODEL_CONFIG)
    (context / "config.properties").write_text(TORCHSERVE_CONFIG)
    return TORCHSERVE_DOCKERFILE.format(
        base=BASE,
        pip=PIP_INSTALL,
        requirements=f"{TORCH} {requirement} {TORCHSERVE_UNDECLARED}",
        archiver=ARCHIVER,
        service=service,
        jre=JRE,
    )


def check_torchserve_image(tag: str) -> None:
    """Start the TorchServe image without network; it must answer a prediction inside."""
    container = f"deployer-bench-torchserve-check-{os.getpid()}"
    docker("run", "-d", "--network", "none", "--name", container, tag)
    try:
        done = subprocess.run(
            ["docker", "exec", container, "python3", "-c", SERVE_CHECK],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            logs = subprocess.run(
                ["docker", "logs", "--tail", "30", container], capture_output=True, text=True
            )
            raise SystemExit(
                f"TorchServe's image did not serve: {done.stdout}{done.stderr}\n"
                f"its last log lines:\n{logs.stdout}{logs.stderr}"
            )
        print(done.stdout.strip())
    finally:
        docker("rm", "-f", container)


def peer(name: str, folder: Path, model: Path) -> int:
    """The peer's smallest image (see the module docstring); its size. The tag is removed."""
    requirement, service = PEERS[name]
    context = folder / name
    wheels = context / "wheels"
    wheels.mkdir(parents=True)
    extra = [ARCHIVER, TORCHSERVE_UNDECLARED] if name == "torchserve" else []
    wanted = [TORCH, requirement, *extra]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "-d", str(wheels), *wanted], check=True
    )
    shutil.copy(HERE / "peers" / service, context / service)
    shutil.copy(model, context / "mlp.pt")
    (context / "Dockerfile").write_text(peer_dockerfile(name, context))
    tag = f"deployer-bench-{name}:torch"
    docker("build", "-q", "-t", tag, str(context))
    try:
        if name == "torchserve":  # the JRE the build installed runs the server
            check_torchserve_image(tag)
        return image_size(tag)
    finally:
        docker("image", "rm", "-f", tag)


def report(sizes: dict[str, int]) -> str:
    ours = sizes.get("ours")
    lines = ["| image | size | vs ours |", "|---|---:|---:|"]
    for name, size in sizes.items():
        versus = f"{size / ours:.2f}x" if ours else "n/a"
        lines.append(f"| {name} | {size / 1e6:.0f} MB | {versus} |")
    peers = [v for k, v in sizes.items() if k != "ours"]
    if ours is None or not peers:
        verdict = "not measured (needs ours and a peer)"
    else:
        verdict = "MET" if ours <= min(peers) else "NOT MET"
    lines += ["", f"Target (issue 16, no larger than the smallest peer): {verdict}"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--images", default=",".join(IMAGES), help=f"which images ({','.join(IMAGES)})"
    )
    parser.add_argument("--json", type=Path, help="also write the sizes here")
    args = parser.parse_args()
    images = args.images.split(",")
    unknown = sorted(set(images) - set(IMAGES))
    if unknown:
        parser.error(f"unknown images: {', '.join(unknown)} (expected some of {IMAGES})")
    folder = Path(tempfile.mkdtemp(prefix="deployer-bench-torch-image-"))
    sizes: dict[str, Any] = {}
    try:
        model = write_model(folder)
        if "ours" in images:
            sizes["ours"] = ours(folder)
        for name in (p for p in PEERS if p in images):
            sizes[name] = peer(name, folder, model)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(report(sizes))
    if args.json:
        args.json.write_text(json.dumps({"base_image": BASE, "bytes": sizes}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
