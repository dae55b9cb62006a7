"""Image sizes for a PyTorch model: ours vs BentoML and LitServe at their smallest (issue 16).

    .venv/bin/python benchmarks/torch_image.py [--json out.json]

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

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BASE = os.environ.setdefault("DEPLOYER_BASE_IMAGE", "deployer-base:bookworm-py311")
TORCH = "torch==2.13.0"
PEERS = {
    "bentoml": ("bentoml==1.4.40", "bentoml_service.py"),
    "litserve": ("litserve==0.2.19", "litserve_server.py"),
}
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
    """``deployer build`` of the MLP; the image's size."""
    from deployer import Project

    (folder / "deployer.yaml").write_text(DEPLOYER_YAML)
    image = Project.load(folder / "deployer.yaml").build()
    return int(image.size)


def peer(name: str, folder: Path, model: Path) -> int:
    """The peer's smallest image (see the module docstring); its size. The tag is removed."""
    requirement, service = PEERS[name]
    context = folder / name
    wheels = context / "wheels"
    wheels.mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "-d", str(wheels), TORCH, requirement],
        check=True,
    )
    shutil.copy(HERE / "peers" / service, context / service)
    shutil.copy(model, context / "mlp.pt")
    dockerfile = PEER_DOCKERFILE.format(
        base=BASE, requirements=f"{TORCH} {requirement}", service=service
    )
    (context / "Dockerfile").write_text(dockerfile)
    tag = f"deployer-bench-{name}:torch"
    docker("build", "-q", "-t", tag, str(context))
    try:
        return image_size(tag)
    finally:
        docker("image", "rm", "-f", tag)


def report(sizes: dict[str, int]) -> str:
    smallest_peer = min(v for k, v in sizes.items() if k != "ours")
    lines = ["| image | size | vs ours |", "|---|---:|---:|"]
    for name, size in sizes.items():
        lines.append(f"| {name} | {size / 1e6:.0f} MB | {size / sizes['ours']:.2f}x |")
    met = sizes["ours"] <= smallest_peer
    verdict = "MET" if met else "NOT MET"
    lines += ["", f"Target (issue 16, no larger than the smallest peer): {verdict}"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path, help="also write the sizes here")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="deployer-bench-torch-image-"))
    sizes: dict[str, Any] = {}
    try:
        model = write_model(folder)
        sizes["ours"] = ours(folder)
        for name in PEERS:
            sizes[name] = peer(name, folder, model)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(report(sizes))
    if args.json:
        args.json.write_text(json.dumps({"base_image": BASE, "bytes": sizes}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
