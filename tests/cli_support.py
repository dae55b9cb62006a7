"""Which modules a piece of Python code imports, in a fresh interpreter: how the CLI tests
(tests/project, router/tests) prove that start-up stays free of SDKs and frameworks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Real SDK code, not the namespace stubs (google, google.cloud, azure) that .pth files of
# installed SDKs create at interpreter start-up without running any of their code.
HEAVY = (
    "boto3",
    "botocore",
    "google.cloud.aiplatform",
    "google.api_core",
    "google.auth",
    "azure.ai",
    "azure.core",
    "azure.identity",
    "kubernetes",
    "docker",
    "sklearn",
    "onnxruntime",
    "xgboost",
    "torch",
    "lightgbm",
    "catboost",
    "mlflow",
    "pandas",
    "transformers",
    "tensorflow",
    "keras",
    "jax",
)


def imported_by(code: str) -> set[str]:
    probe = (
        f"{code}\nimport sys, json\n"
        "loaded = [n for n, m in sys.modules.items() if getattr(m, '__file__', None)]\n"
        "print(json.dumps(sorted(loaded)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr
    return set(json.loads(lines[-1]))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
