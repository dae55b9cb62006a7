"""Assemble the docker build context from a BuildSpec: Dockerfile, wheels, runtime code,
settings, model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from string import Template

from deployer._version import __version__
from deployer.image import accelerator, baseline
from deployer.image.code_copy import copy_code
from deployer.image.spec import BuildSpec
from deployer.resources import read_template, template_path
from deployer.serving.routes import DEFAULT_PORT

# The part of the deployer package the image runs (see deployer/serving/__init__.py).
# providers: the image reads deployer.providers.monitoring (capture's spec and record
# format); the SDK's package imports the standard library only (tests/architecture).
RUNTIME_PACKAGES = ("serving", "flavors", "providers")
RUNTIME_MODULES = ("__init__.py", "_version.py", "errors.py", "yaml_errors.py")
# Not /opt/ml/model: SageMaker mounts the model artifact's folder there, hiding the image's
# own files (see deployer/serving/artifacts.py).
MODEL_DIR = "/opt/deployer/model"
CODE_DIR = "/opt/deployer/code"
LABEL_PREFIX = "dev.deployer"
# The images' non-root user (templates/hardened.Dockerfile creates it): a fixed uid, so a
# Kubernetes runAsNonRoot check can verify it without a name lookup.
RUNTIME_USER = "10001:10001"
HEALTHCHECK_SCRIPT = "healthcheck.py"


@dataclass(frozen=True)
class BuildContext:
    """A folder ready for ``docker build``, and what went into it."""

    path: Path
    labels: dict[str, str]
    requirements: list[str]


def git_commit(folder: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def image_labels(spec: BuildSpec, commit: str | None) -> dict[str, str]:
    sha256 = spec.artifact_sha256
    labels = {
        "org.opencontainers.image.title": spec.name,
        "org.opencontainers.image.version": sha256[:12],
        f"{LABEL_PREFIX}.project": spec.name,
        f"{LABEL_PREFIX}.version": __version__,
        f"{LABEL_PREFIX}.model.sha256": sha256,
        f"{LABEL_PREFIX}.model.flavor": spec.flavor,
        "com.amazonaws.sagemaker.capabilities.accept-bind-to-port": "true",
    }
    if commit:
        labels["org.opencontainers.image.revision"] = commit
    threshold = spec.settings.decision_threshold
    if threshold is not None:  # predict decides with it (deployer.flavors.threshold)
        labels[f"{LABEL_PREFIX}.threshold"] = f"{threshold['value']:g}"
    return {**labels, **accelerator.labels(spec.accelerator, spec.cuda)}


def copy_runtime(target: Path, packages: tuple[str, ...] = RUNTIME_PACKAGES) -> None:
    """Copy the part of the deployer package an image runs into ``target``."""
    package = Path(__file__).resolve().parent.parent
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    (target / "deployer").mkdir(parents=True)
    for module in RUNTIME_MODULES:
        shutil.copy2(package / module, target / "deployer" / module)
    for sub in packages:
        shutil.copytree(package / sub, target / "deployer" / sub, ignore=ignore)


def shared_stages(base: str) -> dict[str, str]:
    """The stages every deployer image shares: ``dependencies_stage`` (the venv) and
    ``hardened_stage`` (the base without setuid bits or package manager, with the user)."""
    return {
        name: Template(read_template(template)).substitute(base=base)
        for name, template in (
            ("dependencies_stage", "dependencies.Dockerfile"),
            ("hardened_stage", "hardened.Dockerfile"),
        )
    }


def add_healthcheck(folder: Path) -> None:
    """Put the HEALTHCHECK script (templates/healthcheck.py) into a build context."""
    shutil.copyfile(template_path(HEALTHCHECK_SCRIPT), folder / HEALTHCHECK_SCRIPT)
    os.chmod(folder / HEALTHCHECK_SCRIPT, 0o644)


def make_readable(folder: Path) -> None:
    """Let any user id read (not write) what ``folder`` holds: folders 0755, files 0644
    (0755 when executable), whatever the umask they were written with."""
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            os.chmod(Path(root) / d, 0o755)
        for f in files:
            path = Path(root) / f
            os.chmod(path, 0o755 if path.stat().st_mode & 0o100 else 0o644)


def render_dockerfile(template: str, base: str, labels: dict[str, str], **values: object) -> str:
    """Fill a Dockerfile template, including the shared stages."""
    return Template(read_template(template)).substitute(
        base=base,
        user=RUNTIME_USER,
        **shared_stages(base),
        labels=" \\\n      ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())),
        **values,
    )


def copy_wheels(wheels: Path, target: Path) -> None:
    shutil.copytree(wheels, target, ignore=shutil.ignore_patterns(".complete"))


def _copy_readable(source: Path, target: Path) -> None:
    """Copy a file or folder so any user id in the container can read it."""
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    for root, dirs, files in os.walk(target if target.is_dir() else target.parent):
        for d in dirs:
            os.chmod(Path(root) / d, 0o755)
        for f in files:
            os.chmod(Path(root) / f, 0o644)


def check_code(spec: BuildSpec) -> None:
    """Refuse the declared code before anything slow runs (see code_copy)."""
    for source in spec.code:
        copy_code(source, None, spec.source or folder_of(source))


def folder_of(source: Path) -> Path:
    """A code path's own folder: its project when the spec names none."""
    return source if source.is_dir() else source.parent


def assemble(spec: BuildSpec, wheels: Path, folder: Path) -> BuildContext:
    """Write the build context for ``spec`` into ``folder`` (emptied first)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    copy_wheels(wheels, folder / "wheels")
    copy_runtime(folder / "runtime")
    add_healthcheck(folder)
    (folder / "code").mkdir()
    code_paths: list[str] = []
    for index, source in enumerate(spec.code):
        # a folder ships its contents; a file ships alone; either way the copy is importable
        copy_code(source, folder / "code" / str(index), spec.source or folder_of(source))
        code_paths.append(f"{CODE_DIR}/{index}")
    model_path = None
    if spec.model_path is not None:
        model_path = f"{MODEL_DIR}/{spec.model_path.name}"
        _copy_readable(spec.model_path, folder / "model" / spec.model_path.name)
    else:
        (folder / "model").mkdir()
    options = dict(spec.settings.flavor_options)
    if code_paths:
        options["code_paths"] = code_paths
    (folder / "monitoring").mkdir()
    baseline_path = None
    if spec.baseline is not None:  # the drift gauges' baseline (deployer.serving.drift_metrics)
        (folder / "monitoring" / "baseline.json").write_text(json.dumps(spec.baseline))
        baseline_path = baseline.IMAGE_FILE
    settings = replace(
        spec.settings,
        host="0.0.0.0",
        port=DEFAULT_PORT,
        model_path=model_path,
        flavor_options=options,
        baseline_path=baseline_path,
    )
    (folder / "serving.json").write_text(json.dumps(json.loads(settings.to_json()), indent=2))
    make_readable(folder)
    labels = image_labels(spec, git_commit(spec.source) if spec.source else None)
    dockerfile = render_dockerfile(
        "Dockerfile.tmpl",
        spec.base,
        labels,
        port=DEFAULT_PORT,
        accelerator_env=accelerator.dockerfile_env(spec.accelerator),
    )
    (folder / "Dockerfile").write_text(dockerfile)
    requirements = (wheels / "requirements.txt").read_text().split()
    return BuildContext(folder, labels, requirements)
