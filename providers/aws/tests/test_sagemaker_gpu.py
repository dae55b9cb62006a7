"""A CUDA image on SageMaker: plan's note when the instance type has no GPU or the
endpoint is serverless (a note, not a refusal); nothing for a CPU image or a GPU type."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from aws_support import release

from deployer.providers import IMAGE_ACCELERATOR_LABEL, Release
from deployer_aws.gpu import has_gpu


def cuda(seed: str) -> Release:
    base = release(seed)
    labels = {**base.image.labels, IMAGE_ACCELERATOR_LABEL: "cuda"}
    return dataclasses.replace(base, image=dataclasses.replace(base.image, labels=labels))


def test_plan_suggests_gpu_instances_for_a_cuda_image(provider: Any) -> None:
    plan = provider().plan(cuda("v1"))
    (note,) = plan.notes
    assert "ml.m5.large" in note and "ml.g5.xlarge or ml.g6.xlarge" in note
    assert plan.ok
    assert provider().plan(release("v1")).notes == []
    assert provider(instance_type="ml.g5.xlarge").plan(cuda("v1")).notes == []


def test_serverless_has_no_gpu(provider: Any) -> None:
    plan = provider(serverless={"memory_mb": 2048}).plan(cuda("v1"))
    (note,) = plan.notes
    assert "serverless" in note and "ml.g5.xlarge" in note


@pytest.mark.parametrize(
    ("instance_type", "gpu"),
    [
        ("ml.g5.xlarge", True),
        ("ml.g6.xlarge", True),
        ("ml.g4dn.xlarge", True),
        ("ml.p4d.24xlarge", True),
        ("ml.m5.large", False),
        ("ml.c6i.xlarge", False),
        ("ml.inf2.xlarge", False),  # Neuron, not CUDA
    ],
)
def test_gpu_instance_types(instance_type: str, gpu: bool) -> None:
    assert has_gpu(instance_type) is gpu
