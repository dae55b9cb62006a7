"""A CUDA image on Vertex AI: plan's note when no GPU is attached, and the GPU in the
DeployedModel's dedicated resources once ``accelerator_type`` is set."""

from __future__ import annotations

import dataclasses

import pytest
from vertex_support import provider, push, release

from deployer.errors import ConfigError
from deployer.providers import IMAGE_ACCELERATOR_LABEL, Release


def cuda(n: int) -> Release:
    base = release(n)
    labels = {**base.image.labels, IMAGE_ACCELERATOR_LABEL: "cuda"}
    return dataclasses.replace(base, image=dataclasses.replace(base.image, labels=labels))


def test_plan_suggests_a_t4_for_a_cuda_image_without_a_gpu(vertex, adc) -> None:
    plan = provider(vertex.address).plan(cuda(1))
    (note,) = plan.notes
    assert "n1-standard-2" in note and "machine_type: n1-standard-4" in note
    assert "accelerator_type: NVIDIA_TESLA_T4" in note and plan.ok
    assert provider(vertex.address).plan(release(1)).notes == []
    gpu = provider(vertex.address, machine_type="n1-standard-4", accelerator_type="NVIDIA_L4")
    plan = gpu.plan(cuda(1))
    assert plan.notes == []
    assert any("n1-standard-4 + 1 x NVIDIA_L4" in c.detail for c in plan.changes)


def test_the_deployed_model_carries_the_accelerator(vertex, adc) -> None:
    target = provider(
        vertex.address,
        machine_type="n1-standard-4",
        accelerator_type="NVIDIA_TESLA_T4",
        accelerator_count=2,
    )
    _, status, _ = push(target, cuda(1))
    assert status.healthy
    (request,) = vertex.requests("DeployModel")
    spec = request.deployed_model.dedicated_resources.machine_spec
    assert (spec.machine_type, spec.accelerator_type.name, spec.accelerator_count) == (
        "n1-standard-4",
        "NVIDIA_TESLA_T4",
        2,
    )


def test_no_accelerator_type_sends_none(vertex, adc) -> None:
    push(provider(vertex.address), release(1))
    (request,) = vertex.requests("DeployModel")
    spec = request.deployed_model.dedicated_resources.machine_spec
    assert spec.accelerator_count == 0 and not spec.accelerator_type


@pytest.mark.parametrize(
    ("options", "field"),
    [({"accelerator_type": "NVIDIA_FOO"}, "accelerator_type"), ({"accelerator_count": 0}, "count")],
)
def test_bad_accelerator_options_name_the_field(vertex, options, field) -> None:
    with pytest.raises(ConfigError, match=field):
        provider(vertex.address, **options)


def test_every_gpu_type_is_one_vertex_knows() -> None:
    from typing import get_args

    from google.cloud.aiplatform_v1 import types

    from deployer_gcp.options import GpuType

    assert set(get_args(GpuType)) <= {a.name for a in types.AcceleratorType}
