"""Image sizes for a PyTorch model: ours vs BentoML, LitServe and TorchServe at their smallest
(issue 16).

    .venv/bin/python benchmarks/torch_image.py [--model mlp|text]
        [--images ours,bentoml,litserve,torchserve] [--json out.json]

Ours: ``deployer build`` of the model of benchmarks/torch_serving.py (``mlp``: the TorchScript
MLP, signature in deployer.yaml; ``text``: the BERT-mini text classifier as a transformers
pipeline), on the local base image (DEPLOYER_BASE_IMAGE, default
deployer-base:bookworm-py311). For ``text`` every peer also gets transformers and tokenizers
at the versions our venv has.

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
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torchserve_peer

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BASE = os.environ.setdefault("DEPLOYER_BASE_IMAGE", "deployer-base:bookworm-py311")
TORCH = "torch==2.13.0"
PEERS = {
    "bentoml": "bentoml==1.4.40",
    "litserve": "litserve==0.2.19",
    "torchserve": "torchserve==0.12.0",
}
ARCHIVER = "torch-model-archiver==0.12.0"
# TorchServe's Python worker imports yaml, which its wheel does not declare (its own install
# script adds it from requirements/common.txt); without it the worker never starts.
TORCHSERVE_UNDECLARED = "pyyaml==6.0.4"
JRE = "openjdk-17-jre-headless"
IMAGES = ("ours", *PEERS)
MLP_YAML = """\
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
TEXT_YAML = """\
name: text-bench
model:
  path: text
  flavor: transformers
  options: {task: text-classification}
"""


@dataclass(frozen=True)
class Model:
    """One benchmark model: its file (or folder) name, how peers/ writes it, our
    deployer.yaml, each peer's service file, what peers need beside torch, and the request
    TorchServe's image is checked with."""

    name: str  # also TorchServe's model name
    file: str
    writer: str
    deployer_yaml: str
    services: dict[str, str]
    extra: tuple[str, ...]
    check_body: str
    check_key: str


def _ours_version(package: str) -> str:
    return f"{package}=={importlib.metadata.version(package)}"


MODELS = {
    "mlp": Model(
        "mlp", "mlp.pt", "torch_model.py", MLP_YAML,
        {"bentoml": "bentoml_service.py", "litserve": "litserve_server.py",
         "torchserve": "torchserve_handler.py"},
        (), '{"x": [0.0] * 64}', "",
    ),
    "text": Model(
        "text", "text", "text_model.py", TEXT_YAML,
        {"bentoml": "bentoml_text_service.py", "litserve": "litserve_text_server.py",
         "torchserve": "torchserve_text_handler.py"},
        ("transformers", "tokenizers"), '{"text": "the movie was very good"}', "label",
    ),
}  # fmt: skip
PEER_DOCKERFILE = """\
FROM {base} AS install
COPY wheels/ /tmp/wheels/
RUN python3 -m venv /opt/venv \\
 && /opt/venv/bin/python -m pip install --no-index --no-cache-dir --disable-pip-version-check \\
      --find-links /tmp/wheels {requirements}
FROM {base}
COPY --from=install /opt/venv /opt/venv
COPY {service} /opt/app/
COPY {model} /opt/app/{model}
ENV MODEL_PATH=/opt/app/{model} PATH=/opt/venv/bin:$PATH
"""
PIP_INSTALL = (
    "python -m pip install --no-index --no-cache-dir --disable-pip-version-check "
    "--find-links /tmp/wheels"
)
TORCHSERVE_DOCKERFILE = """\
FROM {base} AS install
COPY wheels/ /tmp/wheels/
COPY {service} model-config.yaml /tmp/model/
COPY {model} /tmp/model/{model}
RUN python3 -m venv /opt/venv && /opt/venv/bin/{pip} {requirements} \\
 && python3 -m venv /tmp/archiver && /tmp/archiver/bin/{pip} {archiver} \\
 && mkdir -p /opt/app/store \\
 && /tmp/archiver/bin/torch-model-archiver --model-name {name} --version 1.0 \\
      {model_files} --handler /tmp/model/{service} \\
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
load_models={name}
default_workers_per_model=1
disable_token_authorization=true
"""


# Run inside the TorchServe container: POST one request until the model answers 10 logits
# (mlp) or a label (text).
SERVE_CHECK = """\
import json, time, urllib.request
url = "http://127.0.0.1:8080/predictions/{name}"
body = json.dumps({body}).encode()
opener = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))
for _ in range(240):
    try:
        request = urllib.request.Request(url, body, {{"Content-Type": "application/json"}})
        with opener.open(request, timeout=5) as response:
            logits = json.loads(response.read())
        break
    except OSError:
        time.sleep(0.5)
else:
    raise SystemExit(f"no answer from {{url}} in 2 minutes")
if {key!r}:
    if {key!r} not in logits:
        raise SystemExit(f"expected {key!r} in the answer, got {{logits}}")
elif len(logits) != 10:
    raise SystemExit(f"expected 10 logits, got {{logits}}")
print("torchserve in the image answered", str(logits)[:80])
"""


def docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"docker {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr}")
    return done.stdout.strip()


def image_size(tag: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag))


def write_model(model: Model, folder: Path) -> Path:
    """The benchmark's model (torch and transformers from our venv)."""
    path = folder / model.file
    subprocess.run([sys.executable, str(HERE / "peers" / model.writer), str(path)], check=True)
    return path


def ours(model: Model, folder: Path) -> int:
    """``deployer build`` of the model; the image's size. The tag is removed."""
    from deployer import Project

    (folder / "deployer.yaml").write_text(model.deployer_yaml)
    image = Project.load(folder / "deployer.yaml").build()
    try:
        return int(image.size)
    finally:
        docker("image", "rm", "-f", image.ref)


def requirements(name: str, model: Model) -> list[str]:
    """What the peer's venv installs: torch, the peer, and the model's own libraries."""
    extra = [TORCHSERVE_UNDECLARED] if name == "torchserve" else []
    return [TORCH, PEERS[name], *(_ours_version(p) for p in model.extra), *extra]


def peer_dockerfile(name: str, model: Model, context: Path) -> str:
    """The peer's Dockerfile; TorchServe's also needs its batching config and server config
    in ``context``."""
    service, wanted = model.services[name], " ".join(requirements(name, model))
    if name != "torchserve":
        return PEER_DOCKERFILE.format(
            base=BASE, requirements=wanted, service=service, model=model.file
        )
    (context / "model-config.yaml").write_text(torchserve_peer.MODEL_CONFIG)
    (context / "config.properties").write_text(TORCHSERVE_CONFIG.format(name=model.name))
    flag = "--extra-files" if model.name == "text" else "--serialized-file"
    return TORCHSERVE_DOCKERFILE.format(
        base=BASE,
        pip=PIP_INSTALL,
        requirements=wanted,
        archiver=ARCHIVER,
        service=service,
        jre=JRE,
        name=model.name,
        model=model.file,
        model_files=f"{flag} /tmp/model/{model.file}",
    )


def check_torchserve_image(tag: str, model: Model) -> None:
    """Start the TorchServe image without network; it must answer a prediction inside."""
    container = f"deployer-bench-torchserve-check-{os.getpid()}"
    docker("run", "-d", "--network", "none", "--name", container, tag)
    try:
        done = subprocess.run(
            ["docker", "exec", container, "python3", "-c", serve_check(model)],
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


def serve_check(model: Model) -> str:
    return SERVE_CHECK.format(name=model.name, body=model.check_body, key=model.check_key)


def peer(name: str, folder: Path, model: Model, path: Path) -> int:
    """The peer's smallest image (see the module docstring); its size. The tag is removed."""
    service = model.services[name]
    context = folder / name
    wheels = context / "wheels"
    wheels.mkdir(parents=True)
    wanted = requirements(name, model) + ([ARCHIVER] if name == "torchserve" else [])
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "-d", str(wheels), *wanted], check=True
    )
    shutil.copy(HERE / "peers" / service, context / service)
    if path.is_dir():
        shutil.copytree(path, context / model.file)
    else:
        shutil.copy(path, context / model.file)
    (context / "Dockerfile").write_text(peer_dockerfile(name, model, context))
    tag = f"deployer-bench-{name}:torch"
    docker("build", "-q", "-t", tag, str(context))
    try:
        if name == "torchserve":  # the JRE the build installed runs the server
            check_torchserve_image(tag, model)
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
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp", help="mlp or text")
    parser.add_argument("--json", type=Path, help="also write the sizes here")
    args = parser.parse_args()
    model = MODELS[args.model]
    images = args.images.split(",")
    unknown = sorted(set(images) - set(IMAGES))
    if unknown:
        parser.error(f"unknown images: {', '.join(unknown)} (expected some of {IMAGES})")
    folder = Path(tempfile.mkdtemp(prefix="deployer-bench-torch-image-"))
    sizes: dict[str, Any] = {}
    try:
        path = write_model(model, folder)
        if "ours" in images:
            sizes["ours"] = ours(model, folder)
        for name in (p for p in PEERS if p in images):
            sizes[name] = peer(name, folder, model, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(report(sizes))
    if args.json:
        facts = {"base_image": BASE, "model": model.name, "bytes": sizes}
        args.json.write_text(json.dumps(facts, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
