"""The serving runtime imports only what the image installs.

A subprocess runs the server as the image does (``server.run``: uvicorn with uvloop and
httptools, the model loaded by the runner), with an import hook that hides every
installed distribution the image would not have. It answers a health check, predictions
on two routes and a metrics scrape, then lists ``sys.modules``. Every module must be
stdlib, ``deployer``, the project's own code, or come from a distribution in
deployer/serving/requirements.py for that flavour or, transitively, what those require.
"""

from __future__ import annotations

import functools
import importlib.metadata as metadata
import json
import os
import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from serving_support import PLATFORM_VARIABLES, REPO, free_port, serving_settings

from deployer.flavors import flavor_module
from deployer.serving.requirements import FLAVOR_REQUIREMENTS, RUNTIME_REQUIREMENTS

FLAVORS = ("sklearn", "onnx", "xgboost", "python", "lightgbm", "catboost")
FORBIDDEN = ("typer", "rich", "pydantic", "docker", "boto3", "botocore")
FORBIDDEN_DEPLOYER = ("deployer.config", "deployer.api", "deployer.cli")
SITE_DIRS = tuple(
    Path(p).resolve() for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
)
STDLIB_DIRS = tuple(Path(sysconfig.get_paths()[key]).resolve() for key in ("stdlib", "platstdlib"))

PROBE = r"""
import importlib.abc, json, os, sys
baseline = sorted(sys.modules)

# The image has none of these distributions: make importing them fail as it would there.
blocked = frozenset(json.loads(os.environ["DEPLOYER_TEST_BLOCKED"]))
attempted = []

def importer():
    frame = sys._getframe(2)
    while frame.f_code.co_filename.startswith("<frozen importlib") or (
        frame.f_code.co_filename.endswith(os.path.join("importlib", "__init__.py"))
    ):
        frame = frame.f_back
    return frame.f_code.co_filename

class NotInTheImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            attempted.append([name, importer()])
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInTheImage())

import threading, time, urllib.error, urllib.request
from deployer.serving import server
from deployer.serving.settings import ServingSettings

settings = ServingSettings.from_environment()
threading.Thread(target=server.run, args=(settings,), daemon=True).start()
url = f"http://127.0.0.1:{settings.port}"

def call(path, body=None):
    data = None if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    request = urllib.request.Request(url + path, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=5) as answer:
        return answer.status, answer.read()

deadline = time.monotonic() + 180  # four probes start at once on a busy machine
while True:
    try:
        if call("/ping")[0] == 200:
            break
    except (urllib.error.URLError, ConnectionError):
        pass
    if time.monotonic() > deadline:
        raise SystemExit("the server never became ready")
    time.sleep(0.05)

rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
status, body = call("/invocations", rows)
assert status == 200, body
tensor = {"name": "x", "shape": [2, 4], "datatype": "FP32", "data": sum(rows, [])}
status, body = call("/v2/models/probe/infer", {"inputs": [tensor]})
assert status == 200, body
assert call("/metrics")[0] == 200
files = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())}
result = {"baseline": baseline, "modules": files, "attempted": attempted}
print("MODULES " + json.dumps(result))
sys.stdout.flush()
"""


@functools.cache
def providers() -> Mapping[str, list[str]]:
    """Top-level module name -> the distributions that install it."""
    return metadata.packages_distributions()


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_closure(requirements: Iterable[str]) -> set[str]:
    """The distributions ``requirements`` install: themselves and, transitively, their
    requirements whose markers hold here (extras not requested are left out)."""
    seen: set[str] = set()
    pending = list(requirements)
    while pending:
        requirement = Requirement(pending.pop())
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = normalize(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            continue  # not installed here: nothing can have been imported from it
        pending.extend(distribution.requires or [])
    return seen


def not_in_the_image(allowed: set[str]) -> list[str]:
    """Top-level names that only distributions outside ``allowed`` provide."""
    return sorted(
        top
        for top, distributions in providers().items()
        if top != "deployer"
        and top not in sys.stdlib_module_names
        and not any(normalize(d) in allowed for d in distributions)
    )


def within(path: Path, folders: Iterable[Path]) -> Path | None:
    for folder in folders:
        if path.is_relative_to(folder):
            return folder
    return None


def origin(name: str, file: str | None, project_dirs: tuple[Path, ...]) -> str | None:
    """The distribution a module was loaded from; None for stdlib, deployer, the
    project's code and synthetic modules (no file: created by code already checked)."""
    if name.partition(".")[0] in sys.stdlib_module_names or file is None:
        return None
    path = Path(file).resolve()
    if within(path, project_dirs):
        return None
    site = within(path, SITE_DIRS)
    if site is not None:
        top = path.relative_to(site).parts[0].partition(".")[0]
        distributions = providers().get(top)
        return ",".join(normalize(d) for d in distributions) if distributions else f"?{top}"
    if within(path, STDLIB_DIRS):
        return None
    return f"?{path}"


def disallowed(
    modules: Mapping[str, str | None], allowed: set[str], project_dirs: tuple[Path, ...]
) -> dict[str, str]:
    """module -> where it came from, for every module the image would not have."""
    problems = {}
    for name, file in sorted(modules.items()):
        source = origin(name, file, project_dirs)
        if source is not None and not set(source.split(",")) & allowed:
            problems[name] = source
    return problems


@pytest.fixture(scope="module")
def imported(
    tmp_path_factory: pytest.TempPathFactory,
    sklearn_model_path: Path,
    onnx_model_path: Path,
    xgboost_model_path: Path,
    lightgbm_model_path: Path,
    catboost_model_path: Path,
    custom_example_dir: Path,
    custom_predictor_options: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """flavour -> {"baseline": modules at start, "modules": {name: file} after serving,
    "attempted": imports the hook refused}.

    The probes run concurrently to keep the suite fast.
    """
    settings = {
        "sklearn": serving_settings("sklearn", sklearn_model_path),
        "onnx": serving_settings("onnx", onnx_model_path),
        "xgboost": serving_settings("xgboost", xgboost_model_path),
        "lightgbm": serving_settings("lightgbm", lightgbm_model_path),
        "catboost": serving_settings("catboost", catboost_model_path),
        "python": serving_settings(
            "python", custom_example_dir, flavor_options=custom_predictor_options
        ),
    }
    base_env = {k: v for k, v in os.environ.items() if k not in PLATFORM_VARIABLES}
    processes: dict[str, subprocess.Popen[str]] = {}
    results = {}
    try:
        for flavor, flavor_settings in settings.items():
            flavor_settings.update(model_name="probe", port=free_port())
            allowed = installed_closure([*RUNTIME_REQUIREMENTS, *FLAVOR_REQUIREMENTS[flavor]])
            env = {
                **base_env,
                "DEPLOYER_SERVING_SETTINGS": json.dumps(flavor_settings),
                "DEPLOYER_TEST_BLOCKED": json.dumps(not_in_the_image(allowed)),
            }
            processes[flavor] = subprocess.Popen(
                [sys.executable, "-c", PROBE],
                env=env,
                # not the repository: no stray imports
                cwd=tmp_path_factory.mktemp(f"probe-{flavor}"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        for flavor, process in processes.items():
            try:
                out, err = process.communicate(timeout=300)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
            lines = [line for line in out.splitlines() if line.startswith("MODULES ")]
            assert lines, f"the {flavor} probe failed ({process.returncode}):\n{out}\n{err}"
            results[flavor] = json.loads(lines[-1].removeprefix("MODULES "))
    finally:  # a failed probe must not leave the others running
        for process in processes.values():
            if process.returncode is None:
                process.kill()
                process.communicate()
    return results


@pytest.mark.parametrize("flavor", FLAVORS)
def test_only_image_requirements_are_imported(
    imported: dict[str, dict[str, Any]], flavor: str, custom_example_dir: Path
) -> None:
    probe = imported[flavor]
    modules: dict[str, str | None] = probe["modules"]
    loaded_by_serving = {k: v for k, v in modules.items() if k not in set(probe["baseline"])}
    allowed = installed_closure([*RUNTIME_REQUIREMENTS, *FLAVOR_REQUIREMENTS[flavor]])
    project_dirs = (REPO / "deployer", custom_example_dir.resolve())
    assert disallowed(loaded_by_serving, allowed, project_dirs) == {}

    tops = {m.partition(".")[0] for m in modules}
    assert not tops & set(FORBIDDEN)
    assert not set(modules) & set(FORBIDDEN_DEPLOYER)
    # deployer never even tries to import what the image lacks (libraries may try their
    # optional dependencies: sklearn tries rich, xgboost tries sklearn).
    deployer_dir = str(REPO / "deployer")
    assert [a for a in probe["attempted"] if a[1].startswith(deployer_dir)] == []
    # The serving stack really ran: uvicorn with uvloop and httptools, and the flavour.
    for expected in ("uvicorn", "uvloop", "httptools", "prometheus_client", "orjson", "numpy"):
        assert expected in tops
    library = {"sklearn": "sklearn", "onnx": "onnxruntime", "xgboost": "xgboost"}.get(flavor)
    if library:
        assert library in tops


def test_the_check_catches_a_stray_import() -> None:
    """The helpers themselves: a CLI-only library is refused, a transitive dependency is not."""
    allowed = installed_closure(RUNTIME_REQUIREMENTS)
    assert "click" in allowed  # uvicorn requires it
    assert "typer" not in allowed
    hidden = not_in_the_image(allowed)
    assert {"typer", "rich", "pydantic", "sklearn"} <= set(hidden)
    assert not {"uvicorn", "click", "numpy", "yaml", "deployer"} & set(hidden)
    import click
    import typer
    import uvicorn

    modules = {
        "typer": typer.__file__,
        "uvicorn": uvicorn.__file__,
        "click": click.__file__,
        "json": json.__file__,
        "deployer.serving": sys.modules["deployer.serving"].__file__,
        "cython_runtime": None,
    }
    assert disallowed(modules, allowed, (REPO / "deployer",)) == {"typer": "typer"}


def test_requirements_match_pyproject() -> None:
    """The image's list and the package's dependencies stay in step."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {
        normalize(Requirement(r).name): str(Requirement(r).specifier)
        for r in project["dependencies"]
    }
    for requirement in RUNTIME_REQUIREMENTS:
        parsed = Requirement(requirement)
        assert declared.get(normalize(parsed.name)) == str(parsed.specifier), requirement
    extras = project["optional-dependencies"]
    for flavor, requirements in FLAVOR_REQUIREMENTS.items():
        if flavor == "mlflow":  # the image's come from the model: deployer.flavors.image_needs
            assert requirements == ()
            continue
        if flavor == "keras":  # the backend follows model.options (keras_flavor.image_needs...)
            from deployer.flavors.keras_flavor import BACKEND_REQUIREMENTS

            default = BACKEND_REQUIREMENTS["tensorflow"]
            assert sorted(extras["keras"]) == sorted([*requirements, *default])
            continue
        extra = flavor_module(flavor).extra or flavor  # the pytorch flavour's extra: torch
        assert sorted(requirements) == sorted(extras.get(extra, [])), flavor
    # the mlflow extra is what the pyfunc fallback's image carries (and init's registry)
    from deployer.flavors.mlflow import MLFLOW_SKINNY, PYFUNC_REQUIREMENTS

    assert sorted(extras["mlflow"]) == sorted([MLFLOW_SKINNY, *PYFUNC_REQUIREMENTS])
