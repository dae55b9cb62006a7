"""The provider SDK: providers import only it, plugins are checked when loaded, and what a
provider declares (managed endpoints, default router auth) is read from its class."""

from __future__ import annotations

import ast
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import deployer.providers as sdk
from deployer.errors import MissingDependencyError
from deployer.providers import Backend, InvalidPlugin, registry
from deployer.router import manifest

REPO = Path(__file__).resolve().parents[2]
PROVIDER_PACKAGES = {
    "deployer_aws": REPO / "providers" / "aws" / "deployer_aws",
    "deployer_gcp": REPO / "providers" / "gcp" / "deployer_gcp",
    "deployer_azure": REPO / "providers" / "azure" / "deployer_azure",
    "deployer_kubernetes": REPO / "providers" / "kubernetes" / "deployer_kubernetes",
}
# The local target's own package: its front and the front's image.
LOCAL_PACKAGE = "deployer.local"


def imported_modules(file: Path) -> set[str]:
    """Every module ``file`` imports, at any depth (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


SDK_CONTRACTS = ("deployer.providers.monitoring", "deployer.providers.batch")


def forbidden(module: str, own: str) -> bool:
    """deployer's modules other than the SDK, and other providers, are off limits."""
    top = module.split(".")[0]
    if top == "deployer":
        # the SDK, and its monitoring and batch contracts (CaptureSpec, RunsBatch, ...)
        return module not in ("deployer.providers", *SDK_CONTRACTS)
    return top.startswith("deployer_") and top != own


@pytest.mark.parametrize("package", sorted(PROVIDER_PACKAGES))
def test_each_provider_imports_only_the_sdk(package: str) -> None:
    files = sorted(PROVIDER_PACKAGES[package].rglob("*.py"))
    assert files
    bad = {
        f"{file.relative_to(REPO)}: {module}"
        for file in files
        for module in imported_modules(file)
        if forbidden(module, package)
    }
    assert not bad, sorted(bad)


def test_the_local_provider_imports_only_the_sdk() -> None:
    modules = imported_modules(REPO / "deployer" / "local" / "provider.py")
    own = {m for m in modules if m.startswith(LOCAL_PACKAGE + ".")}
    bad = {m for m in modules - own if forbidden(m, LOCAL_PACKAGE)}
    assert not bad, sorted(bad)
    assert "deployer.providers" in modules


def test_the_import_check_catches_a_core_import(tmp_path: Path) -> None:
    file = tmp_path / "m.py"
    file.write_text(
        "from deployer.providers import Plan\n"
        "def f():\n    from deployer.image.registry import push_image\n"
        "import deployer_gcp.names\n"
    )
    modules = imported_modules(file)
    assert {m for m in modules if forbidden(m, "deployer_aws")} == {
        "deployer.image.registry",
        "deployer_gcp.names",
    }


def test_helpers_load_on_first_use_and_are_the_core_ones() -> None:
    from deployer.image import build, engine
    from deployer.image import registry as image_registry
    from deployer.serving import routes

    assert sdk.Image is build.Image and sdk.docker_client is engine.docker_client
    assert sdk.push_image is image_registry.push_image
    assert (sdk.PushError, sdk.RegistryAuth) == (
        image_registry.PushError,
        image_registry.RegistryAuth,
    )
    assert sdk.routes is routes
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        sdk.nothing  # noqa: B018


def test_importing_the_sdk_imports_no_image_serving_router_or_pydantic() -> None:
    import subprocess

    code = (
        "import sys, deployer.providers;"
        "print(sorted(m for m in sys.modules if m.startswith(('deployer.image', "
        "'deployer.serving', 'deployer.router', 'pydantic', 'docker'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- plugins checked when loaded -----------------------------------------------------------

PLUGINS = """
from typing import ClassVar

class Complete:
    name: ClassVar[str] = "fakecloud"
    managed: ClassVar[bool] = True
    default_router_auth: ClassVar[str | None] = "sigv4"

    def __init__(self, target, project): pass
    def plan(self, release): ...
    def publish(self, image, progress): ...
    def deploy(self, release, image_ref, strategy, progress): ...
    def wait(self, deployment, timeout, progress): ...
    def status(self): ...
    def invoke(self, body, content_type, accept=None): ...
    def rollback(self, progress): ...
    def destroy(self, progress): ...
    def route(self): ...

class NoDeploy(Complete):
    deploy = None

class Undeclared:
    name = "fakecloud"
    def plan(self, release): ...

class HalfManifests(Complete):
    def render_yaml(self, source, *, version=None): ...

class WrongName(Complete):
    name = "othercloud"

not_a_class = object()
"""


@pytest.fixture
def register(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``register("Cls")``: an entry point ``fakecloud`` -> ``kit_plugins:Cls``."""
    (tmp_path / "kit_plugins.py").write_text(PLUGINS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "kit_plugins", raising=False)

    def register(attribute: str) -> None:
        entry = metadata.EntryPoint("fakecloud", f"kit_plugins:{attribute}", sdk.ENTRY_POINT_GROUP)
        monkeypatch.setattr(sdk, "available_providers", lambda: {"fakecloud": entry})

    return register


def test_a_complete_plugin_loads(register: Any) -> None:
    register("Complete")
    assert sdk.provider_class("fakecloud").__name__ == "Complete"


@pytest.mark.parametrize(
    ("attribute", "named"),
    [
        ("NoDeploy", ["missing method `deploy`"]),
        (
            "Undeclared",
            [
                "missing `managed`",
                "missing `default_router_auth`",
                "missing method `publish`",
                "missing method `route`",
            ],
        ),
        ("HalfManifests", ["RendersManifests is incomplete: missing `write_manifests`"]),
        ("WrongName", ["`name` is 'othercloud' but the entry point is 'fakecloud'"]),
        ("not_a_class", ["is object, not a class"]),
    ],
)
def test_a_plugin_missing_a_member_fails_naming_it_and_the_plugin(
    register: Any, attribute: str, named: list[str]
) -> None:
    register(attribute)
    with pytest.raises(InvalidPlugin) as caught:
        sdk.provider_class("fakecloud")
    message = caught.value.message
    assert "provider plugin 'fakecloud'" in message
    for part in named:
        assert part in message
    if attribute != "not_a_class":
        assert f"kit_plugins.{attribute}" in message
    assert caught.value.exit_code == MissingDependencyError.exit_code


def test_every_installed_provider_passes_the_check() -> None:
    installed = sdk.available_providers()
    assert {"local", "sagemaker", "vertex", "azureml", "kubernetes"} <= set(installed)
    for name in installed:
        assert sdk.provider_class(name).name == name


def test_a_missing_known_provider_names_its_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sdk, "available_providers", dict)
    with pytest.raises(MissingDependencyError, match="vertex") as caught:
        sdk.provider_class("vertex")
    assert caught.value.hint == "pip install deployer-gcp"


# -- capabilities declared by the provider, read through the registry -----------------------


def test_our_providers_declare_what_the_router_assumed_of_them() -> None:
    facts = {name: registry.declared(name) for name in sdk.available_providers()}
    assert facts["sagemaker"] == registry.Declared(True, "sigv4")
    assert facts["vertex"] == registry.Declared(True, "google-oauth")
    assert facts["azureml"] == registry.Declared(True, "azure-key")
    assert facts["kubernetes"] == facts["local"] == registry.Declared(False, None)
    assert registry.declared("nosuchprovider") == registry.Declared(False, None)


def test_a_third_party_provider_declares_a_managed_endpoint(register: Any) -> None:
    """router.yaml treats a plugin's backends as its class declares, by no name in the core."""
    register("Complete")
    live = Backend("fc", "fakecloud", "https://fake.cloud/e/1:predict", auth="")
    built = manifest.from_backends("iris", [live], options={"fc": {"region": "r"}})
    (backend,) = manifest.parse(manifest.dump(built)).backends
    assert backend.managed and backend.auth.kind == "sigv4"
    assert (backend.mode, backend.health_source) == ("fixed", "control-plane")
    register("WrongName")  # a plugin that fails its check declares nothing
    assert not manifest.is_managed("fakecloud") and manifest.default_auth("fakecloud") == "none"
