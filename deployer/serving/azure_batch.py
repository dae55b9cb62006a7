"""Azure ML batch deployments' scoring script: ``init()`` once per process, then
``run(mini_batch)`` per mini-batch of input file paths, as Azure's batch driver calls it.

It ships in the image (the model is packaged once); the batch deployment's code asset is
only a one-line ``score.py`` importing ``init`` and ``run`` from here (deployer_azure's
batch_specs.SCORE_PY). Each input file is scored with the in-image batch runner
(``deployer.serving.batch_runner``: ``load()`` the model as the server does,
``score_file()`` with the online input shaping) into the job's output folder
(``AZUREML_BI_OUTPUT_PATH``): one output file per input file, rows in input order.
``run`` returns one line per file scored without failure, ``<file>,<rows>,<scored>``:
Azure counts a file missing from the answer as failed (``error_threshold``), and with
``output_action: append_row`` appends the lines to its output file. A failed row is one
JSON line on stderr (the job's logs) naming the file, the rows and the model's error.

The job's options come from the deployment's environment, ``DEPLOYER_BATCH_OPTIONS``: a
JSON object with ``format``, ``keep``, ``label``, ``columns`` and ``rows_per_batch``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

OPTIONS_ENV = "DEPLOYER_BATCH_OPTIONS"
OUTPUT_ENV = "AZUREML_BI_OUTPUT_PATH"  # the job's output folder, set by Azure's driver
_state: dict[str, Any] = {}


def options_from(environ: Mapping[str, str]) -> dict[str, Any]:
    """The batch runner's options from ``DEPLOYER_BATCH_OPTIONS`` (empty: defaults);
    ValueError naming the variable when it is not a JSON object."""
    text = environ.get(OPTIONS_ENV) or "{}"
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{OPTIONS_ENV}: expected a JSON object ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{OPTIONS_ENV}: expected a JSON object, got {text!r}")
    return {
        "format": data.get("format"),
        "keep": tuple(data.get("keep") or ()),
        "label": data.get("label"),
        "columns": tuple(data.get("columns") or ()),
        "rows_per_batch": int(data.get("rows_per_batch") or 1000),
    }


def output_name(path: str, format: str | None) -> str:
    """The output file of input ``path``: its name, with the format's extension if set."""
    source = Path(path)
    return source.name if format is None else f"{source.stem}.{format}"


def init() -> None:
    """Load the model (once per process), as the server does."""
    import deployer.serving.batch_runner as batch_runner

    _state["options"] = batch_runner.BatchOptions(**options_from(os.environ))
    _state["scorer"] = batch_runner.load()


def run(mini_batch: list[Any]) -> list[str]:
    """Score each file of the mini-batch into the output folder; one line per file scored."""
    import deployer.serving.batch_runner as batch_runner

    options = _state["options"]
    folder = Path(os.environ.get(OUTPUT_ENV) or ".")
    folder.mkdir(parents=True, exist_ok=True)
    done: list[str] = []
    for item in mini_batch:
        path = str(item)
        target = folder / output_name(path, options.format)
        counts = batch_runner.score_file(_state["scorer"], path, str(target), options)
        for failure in counts.failures:
            line = json.dumps({**failure, "file": Path(path).name})
            print(line, file=sys.stderr, flush=True)
        if not counts.failed:
            done.append(f"{Path(path).name},{counts.rows},{counts.scored}")
    return done
