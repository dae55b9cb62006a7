"""image.accelerator: cuda at unit level: the requirement list and pip command the
wheelhouse would run, the rendered Dockerfile and labels, the config's defaults and errors.
Nothing is downloaded (CUDA wheels are GBs) and nothing is built."""

from __future__ import annotations

from dataclasses import replace
from importlib import metadata
from pathlib import Path

import pytest

from deployer.config import parse_config
from deployer.errors import ConfigError
from deployer.image import wheelhouse
from deployer.image.accelerator import TORCH_INDEX, host_torch
from deployer.image.context import assemble
from deployer.image.spec import BuildSpec
from deployer.serving.requirements import FLAVOR_REQUIREMENTS, requirements_for
from deployer.serving.settings import ServingSettings

CONFIG = "name: demo\nmodel: {path: model.pt, flavor: pytorch}\n"


def _host_torch() -> str:
    version = host_torch()
    if version is None:
        pytest.skip("torch is not installed on this host")
    return version


def test_cpu_requirements_are_unchanged() -> None:
    """The default (cpu) list is exactly what the build resolved before accelerators."""
    for flavor in FLAVOR_REQUIREMENTS:
        expected = wheelhouse.pinned(requirements_for(flavor, ("orjson",)))
        assert wheelhouse.image_requirements(flavor, ("orjson",)) == expected
        assert wheelhouse.image_requirements(flavor, ("orjson",), "cpu") == expected


def test_cuda_torch_is_the_host_version_without_the_cpu_tag() -> None:
    version = _host_torch()
    for flavor in ("pytorch", "transformers"):
        requirements = wheelhouse.image_requirements(flavor, (), "cuda")
        torch = [r for r in requirements if r.startswith("torch")]
        assert torch == [f"torch=={version}"]
        assert not any("+cpu" in r for r in requirements)
    # the rest stays pinned to the host as on a CPU image
    cpu = wheelhouse.image_requirements("transformers", ())
    cuda = wheelhouse.image_requirements("transformers", (), "cuda")
    assert [r for r in cpu if not r.startswith("torch")] == [
        r for r in cuda if not r.startswith("torch")
    ]


def test_cuda_torch_and_cuda_versions_set_by_the_user() -> None:
    requirements = wheelhouse.image_requirements("pytorch", (), "cuda", "12.8", "2.7.1")
    assert "torch==2.7.1+cu128" in requirements
    requirements = wheelhouse.image_requirements("pytorch", (), "cuda", None, "2.7.1")
    assert "torch==2.7.1" in requirements


def test_a_cuda_image_without_torch_changes_nothing() -> None:
    assert wheelhouse.image_requirements("sklearn", (), "cuda") == wheelhouse.image_requirements(
        "sklearn", ()
    )


def test_the_pip_command_takes_pytorchs_index_only_for_a_cuda_version(tmp_path: Path) -> None:
    from deployer.image.accelerator import index_options

    assert index_options("cpu", None) == [] and index_options("cuda", None) == []
    index = index_options("cuda", "12.6")
    assert index == ["--extra-index-url", TORCH_INDEX.format(tag="126")]
    command = wheelhouse.pip_command(["torch==2.7.1+cu126"], "linux/amd64", "3.11", tmp_path, index)
    assert (
        command[command.index("--extra-index-url") + 1] == "https://download.pytorch.org/whl/cu126"
    )
    assert command[-1] == "torch==2.7.1+cu126"
    assert "--only-binary=:all:" in command and "--no-deps" not in command  # nvidia-* come along
    assert "--extra-index-url" not in wheelhouse.pip_command(
        ["x"], "linux/amd64", "3.11", tmp_path, []
    )


def _spec(tmp_path: Path, **changes: object) -> BuildSpec:
    (tmp_path / "model.pt").write_bytes(b"\0")
    spec = BuildSpec(
        name="demo",
        tag="demo:1",
        flavor="pytorch",
        artifact_sha256="ab" * 32,
        model_path=tmp_path / "model.pt",
        code=(),
        settings=ServingSettings("demo", "pytorch", str(tmp_path / "model.pt")),
        base="python:3.11-slim",
        platform="linux/amd64",
        python="3.11",
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


def _dockerfile(tmp_path: Path, spec: BuildSpec, name: str) -> tuple[str, dict[str, str]]:
    wheels = tmp_path / "wheels"
    wheels.mkdir(exist_ok=True)
    (wheels / "requirements.txt").write_text("torch==2.13.0\n")
    context = assemble(spec, wheels, tmp_path / name)
    return (context.path / "Dockerfile").read_text(), context.labels


def test_the_cuda_dockerfile_sets_the_nvidia_environment(tmp_path: Path) -> None:
    cuda = _spec(tmp_path, accelerator="cuda", cuda="12.8", base="nvidia/cuda:custom")
    text, labels = _dockerfile(tmp_path, cuda, "cuda")
    assert "FROM nvidia/cuda:custom AS dependencies" in text
    final = text[text.index("FROM hardened") :]
    assert "    NVIDIA_VISIBLE_DEVICES=all \\\n" in final
    assert "    NVIDIA_DRIVER_CAPABILITIES=compute,utility\n" in final
    assert "+cpu" not in text
    assert labels["dev.deployer.accelerator"] == "cuda"
    assert labels["dev.deployer.cuda"] == "12.8"


def test_the_cpu_dockerfile_has_no_nvidia_environment(tmp_path: Path) -> None:
    text, labels = _dockerfile(tmp_path, _spec(tmp_path), "cpu")
    assert "NVIDIA" not in text
    assert "DEPLOYER_SERVING_CONFIG=/opt/deployer/serving.json\nCOPY" in text
    assert not any(k.startswith("dev.deployer.accelerator") for k in labels)


def test_config_defaults_and_overrides() -> None:
    cpu = parse_config(CONFIG, "deployer.yaml").image
    assert (cpu.accelerator, cpu.base, cpu.cuda, cpu.torch) == (
        "cpu", "python:3.11-slim", None, None,
    )  # fmt: skip
    cuda = parse_config(CONFIG + "image: {accelerator: cuda, cuda: '12.8'}\n", "d.yaml").image
    assert (cuda.accelerator, cuda.cuda, cuda.base) == ("cuda", "12.8", "python:3.11-slim")
    own = parse_config(CONFIG + "image: {accelerator: cuda, base: 'my/base:1'}\n", "d.yaml")
    assert own.image.base == "my/base:1"


@pytest.mark.parametrize(
    ("image", "field"),
    [
        ("{accelerator: rocm}", "image.accelerator"),
        ("{accelerator: cuda, cuda: '12'}", "image.cuda"),
        ("{accelerator: cuda, torch: latest}", "image.torch"),
        ("{cuda: '12.8'}", "image.cuda"),
        ("{torch: '2.7.1'}", "image.torch"),
    ],
)
def test_bad_accelerator_settings_name_the_field(image: str, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG + f"image: {image}\n", "deployer.yaml")
    text = str(caught.value)
    assert field in text and "deployer.yaml" in text


def test_the_build_spec_carries_the_accelerator(tmp_path: Path) -> None:
    from deployer.api import Project

    (tmp_path / "model.pt").write_bytes(b"\0")
    (tmp_path / "deployer.yaml").write_text(
        CONFIG + "image: {accelerator: cuda, cuda: '12.8', torch: '2.7.1'}\n"
    )
    spec = Project.load(tmp_path / "deployer.yaml").build_spec()
    assert (spec.accelerator, spec.cuda, spec.torch) == ("cuda", "12.8", "2.7.1")


def test_host_torch_drops_the_local_tag() -> None:
    try:
        raw = metadata.version("torch")
    except metadata.PackageNotFoundError:
        pytest.skip("torch is not installed on this host")
    assert host_torch() == raw.split("+")[0]


def test_providers_read_the_label_the_image_writes() -> None:
    from deployer.image.accelerator import ACCELERATOR_LABEL
    from deployer.providers import IMAGE_ACCELERATOR_LABEL, Release
    from deployer.providers import Image as ProviderImage

    assert IMAGE_ACCELERATOR_LABEL == ACCELERATOR_LABEL
    image = ProviderImage("demo:1", "sha256:" + "0" * 64, 1, {ACCELERATOR_LABEL: "cuda"})
    assert Release("demo", image, [], {}).accelerator == "cuda"
    plain = ProviderImage("demo:1", "sha256:" + "0" * 64, 1, {})
    assert Release("demo", plain, [], {}).accelerator == "cpu"
