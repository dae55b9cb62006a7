"""``deployer init``: write a commented deployer.yaml for a model file."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from string import Template
from typing import Any

from deployer.errors import UsageError, file_or_folder_problem
from deployer.flavors import FLAVOR_NAMES, detect_flavor, load_model
from deployer.flavors.mlflow import download_registered, is_registry_uri
from deployer.resources import read_template


def project_name_for(model: Path) -> str:
    """A valid project name from the model's folder or file name."""
    stem = model.parent.name if model.stem in ("model", "") else model.stem
    name = re.sub(r"[^a-z0-9-]+", "-", stem.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"model-{name}".strip("-")
    return name[:40].rstrip("-") or "model"


def transformers_block(task: str) -> str:
    """The pipeline task (inferred from config.json) and the options it takes."""
    return (
        f"  options:\n    task: {task}   # text-classification | token-classification | "
        "feature-extraction | text-generation\n"
        "    # top_k: 1             # text-classification: labels per text\n"
        "    # max_new_tokens: 64   # text-generation: the most a request may ask for\n"
    )


def render_project_file(
    model: Path,
    config_dir: Path,
    *,
    name: str | None = None,
    flavor: str | None = None,
    predictor: str | None = None,
) -> str:
    """The text of a new deployer.yaml; loads the model once to list its outputs.

    A registry URI (``models:/NAME/VERSION``, with MLFLOW_TRACKING_URI set) is first
    downloaded into a folder next to the project file, which deployer.yaml then names."""
    if is_registry_uri(str(model)):
        model = download_registered(str(model), config_dir)
    problem = file_or_folder_problem(model)  # stat only: a FIFO is never opened
    if problem:
        raise UsageError(f"model file {model} {problem}; expected a regular file or a folder")
    flavor = flavor or ("python" if predictor else detect_flavor(str(model)))
    if flavor is None:
        raise UsageError(
            f"cannot tell the flavour of {model}",
            hint=f"pass --flavor, one of: {', '.join(FLAVOR_NAMES)}",
        )
    options = {"predictor": predictor, "code_paths": [str(config_dir)]} if predictor else {}
    loaded = load_model(flavor, str(model), options)
    relative = os.path.relpath(model.resolve(), config_dir.resolve())
    block = f"  predictor: {predictor}   # module:Class\n  code: [.]\n" if predictor else ""
    if flavor == "transformers":
        block += transformers_block(loaded.extra.get("task", ""))
    pickle_note = (
        "Loading a pickle runs code from it: only deploy models you trust."
        if flavor in ("sklearn", "mlflow")
        else ""
    )
    return Template(read_template("deployer.yaml.tmpl")).substitute(
        name=name or project_name_for(model.resolve()),
        path=relative,
        flavor=flavor,
        predictor_block=block,
        methods=", ".join(loaded.signature.methods),
        pickle_note=pickle_note,
    )


def init_baseline(
    record: Callable[..., dict[str, Any]], data: str | None, label: str | None
) -> str:
    """``deployer init --data``: record the training data's baseline in deployer.lock with
    ``record`` (``Project.baseline``: what ``deployer drift`` compares with); without data,
    the line offering it."""
    if data is None:
        return (
            "drift: record the training data's baseline with "
            "[bold]deployer baseline --data train.csv --label COLUMN[/]"
        )
    entry = record(data, label=label)
    rows, features = entry["data"]["rows"], len(entry["features"])
    return f"recorded the baseline of {data} ({rows} rows, {features} features) in deployer.lock"
