"""A CUDA image on Azure ML: plan's note when the VM size has no GPU (a note, not a
refusal); nothing for a CPU image or a GPU size."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from azure_support import release

from deployer.providers import IMAGE_ACCELERATOR_LABEL, Release
from deployer_azure.gpu import has_gpu


def cuda(n: int) -> Release:
    base = release(n)
    labels = {**base.image.labels, IMAGE_ACCELERATOR_LABEL: "cuda"}
    return dataclasses.replace(base, image=dataclasses.replace(base.image, labels=labels))


def test_plan_suggests_a_t4_size_for_a_cuda_image(make_provider: Any) -> None:
    plan = make_provider().plan(cuda(1))
    (note,) = plan.notes
    assert "Standard_DS3_v2" in note and "instance_type: Standard_NC4as_T4_v3" in note
    assert plan.ok
    assert make_provider().plan(release(1)).notes == []
    assert make_provider(instance_type="Standard_NC4as_T4_v3").plan(cuda(1)).notes == []


@pytest.mark.parametrize(
    ("size", "gpu"),
    [
        ("Standard_NC4as_T4_v3", True),
        ("Standard_NC24ads_A100_v4", True),
        ("Standard_ND96asr_v4", True),
        ("Standard_NV12s_v3", True),
        ("Standard_NV8as_v4", False),  # AMD
        ("Standard_DS3_v2", False),
        ("Standard_F4s_v2", False),
    ],
)
def test_gpu_sizes(size: str, gpu: bool) -> None:
    assert has_gpu(size) is gpu
