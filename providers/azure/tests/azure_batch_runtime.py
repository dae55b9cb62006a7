"""The fake batch endpoint's runtime with real containers: the deployment's image runs
the code asset's scoring script as Azure's batch driver does.

One container per job (one node): the image pulled from the (local) registry, its
environment the deployment's plus ``AZUREML_BI_OUTPUT_PATH``; the code asset, the input
files and the output folder mounted; a small harness in place of Azure's driver imports
``score.py`` from the code folder, calls ``init()`` once, then ``run(list of file paths)``
per mini-batch, retrying a mini-batch that raises ``maxRetries`` times, and writes what
each ``run`` answered (or its last error) for the fake to judge. The container's output
is the job's driver log.
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

from azure_batch_fake import MiniBatchResult

PYTHON = "/opt/venv/bin/python"  # the image's interpreter (templates/Dockerfile.tmpl)
HARNESS = """
import importlib.util, json, sys, traceback
spec = importlib.util.spec_from_file_location("score", "/mnt/code/score.py")
score = importlib.util.module_from_spec(spec)
spec.loader.exec_module(score)
score.init()
batches, retries, results = json.loads(sys.argv[1]), int(sys.argv[2]), []
for batch in batches:
    for attempt in range(retries + 1):
        try:
            results.append({"answered": [str(line) for line in score.run(batch)]})
            break
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
    else:
        results.append({"error": error})
with open("/mnt/results/results.json", "w") as out:
    json.dump(results, out)
"""


class DockerBatchRuntime:
    def __init__(self, docker: Any, registry_auth: dict[str, str]) -> None:
        self.docker = docker
        self.auth = registry_auth

    def run(
        self,
        deployment: dict[str, Any],
        code: Path,
        inputs: list[Path],
        output: Path,
        mini_batches: list[list[Path]],
        max_retries: int,
        log: list[str],
        cancelled: threading.Event,
    ) -> list[MiniBatchResult]:
        props = deployment["properties"]
        image = deployment["image"]  # the environment's, as the fake resolved it
        self.docker.images.pull(image, auth_config=self.auth)
        results = output.parent / "results"
        results.mkdir()
        results.chmod(0o777)
        folder = inputs[0].parent
        batches = [[f"/mnt/input/{p.name}" for p in batch] for batch in mini_batches]
        container = self.docker.containers.run(
            image,
            entrypoint=[PYTHON, "-c", HARNESS],
            command=[json.dumps(batches), str(max_retries)],
            environment={
                **(props.get("environmentVariables") or {}),
                "AZUREML_BI_OUTPUT_PATH": "/mnt/output",
            },
            volumes={
                str(code): {"bind": "/mnt/code", "mode": "ro"},
                str(folder): {"bind": "/mnt/input", "mode": "ro"},
                str(output): {"bind": "/mnt/output", "mode": "rw"},
                str(results): {"bind": "/mnt/results", "mode": "rw"},
            },
            name=f"azfake-batch-{uuid.uuid4().hex[:8]}",
            labels={"deployer-test": "azure-fake"},
            network_mode="none",
            detach=True,
        )
        try:
            container.wait(timeout=300)
            log.extend(container.logs().decode("utf-8", "replace").splitlines())
        finally:
            container.remove(force=True)
        answers = results / "results.json"
        if not answers.exists():
            message = "init() failed: " + (log[-1] if log else "no output")
            return [MiniBatchResult(error=message) for _ in mini_batches]
        return [
            MiniBatchResult(item.get("answered") or [], item.get("error"))
            for item in json.loads(answers.read_text())
        ]
