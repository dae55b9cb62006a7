"""Image size and build times for the iris sklearn model (issue 3).

    .venv/bin/python benchmarks/image.py [--json out.json]

Measures, on this machine's Docker engine and the local base image
(DEPLOYER_BASE_IMAGE, default deployer-base:bookworm-py311, python:3.11-slim class):
- the image size;
- a full build: wheelhouse downloaded again and every layer rebuilt (--no-cache);
- a rebuild after changing only the model file (every dependency layer cached);
- a rebuild with nothing changed (must give the identical image, no new layer).
MLflow's `build-docker` and MLServer images need Docker Hub and network inside the
build, neither of which this machine has; their sizes are quoted, not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples" / "iris"))

from train import train  # noqa: E402

from deployer import Project  # noqa: E402

QUOTED_PEERS = {  # bytes, from the issue (not measured here)
    "mlflow models build-docker (sklearn iris)": 1_000_000_000,
    "MLServer sklearn image": 930_000_000,
}
TARGET_SIZE = 350_000_000
TARGET_MODEL_REBUILD_S = 5.0


def timed(action: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def measure(folder: Path) -> dict[str, Any]:
    train(folder / "model.joblib")
    (folder / "deployer.yaml").write_text("name: iris-bench\nmodel:\n  path: model.joblib\n")
    project = Project.load(folder / "deployer.yaml")
    full, full_s = timed(lambda: project.build(refresh_wheels=True, no_cache=True))
    same, same_s = timed(lambda: Project.load(folder / "deployer.yaml").build())
    with open(folder / "model.joblib", "ab") as f:
        f.write(b"\0")  # a new model file (joblib ignores trailing bytes)
    model, model_s = timed(lambda: Project.load(folder / "deployer.yaml").build())
    return {
        "size_bytes": full.size,
        "full_build_s": round(full_s, 1),
        "unchanged_rebuild_s": round(same_s, 1),
        "unchanged_rebuild_same_image": same.id == full.id,
        "model_only_rebuild_s": round(model_s, 1),
        "model_only_new_image": model.id != full.id,
        "base_image": os.environ.get("DEPLOYER_BASE_IMAGE", "python:3.11-slim"),
    }


def report(result: dict[str, Any]) -> str:
    size = result["size_bytes"]
    lines = [
        "| image | size | vs deployer |",
        "|---|---|---|",
        f"| deployer (iris, sklearn) | {size / 1e6:.0f} MB | 1.00x |",
    ]
    for name, peer in QUOTED_PEERS.items():
        lines.append(f"| {name} (quoted) | {peer / 1e6:.0f} MB | {peer / size:.2f}x |")
    lines += [
        "",
        "| build | seconds | target |",
        "|---|---|---|",
        f"| full (wheels downloaded, no layer cache) | {result['full_build_s']} | |",
        f"| model file changed only | {result['model_only_rebuild_s']} "
        f"| <= {TARGET_MODEL_REBUILD_S} |",
        f"| nothing changed | {result['unchanged_rebuild_s']} | same image: "
        f"{result['unchanged_rebuild_same_image']} |",
        "",
        f"Size target <= {TARGET_SIZE / 1e6:.0f} MB: {'met' if size <= TARGET_SIZE else 'MISSED'};"
        f" model rebuild target: "
        f"{'met' if result['model_only_rebuild_s'] <= TARGET_MODEL_REBUILD_S else 'MISSED'}.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()
    os.environ.setdefault("DEPLOYER_BASE_IMAGE", "deployer-base:bookworm-py311")
    folder = Path(tempfile.mkdtemp(prefix="deployer-bench-image-"))
    try:
        result = measure(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
