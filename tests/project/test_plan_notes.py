"""Plan.notes: advice that refuses nothing (a CUDA image on a CPU-only size), in the
plan's JSON and printed under the target as ``note:``."""

from __future__ import annotations

import pytest

from deployer import output
from deployer.providers import Change, Plan


def test_notes_are_in_the_json_and_do_not_refuse() -> None:
    plan = Plan("aws", [Change("create", "endpoint e")], notes=["use ml.g5.xlarge"])
    document = plan.to_dict()
    assert document["notes"] == ["use ml.g5.xlarge"] and document["ok"] is True
    assert Plan("aws", []).to_dict()["notes"] == []


def test_notes_are_printed_under_their_target(capsys: pytest.CaptureFixture[str]) -> None:
    plan = Plan("aws", [Change("create", "endpoint e")], notes=["a CUDA image on [ml.m5]"])
    output.render_plans([plan.to_dict()])
    printed = capsys.readouterr().out
    assert "note: a CUDA image on [ml.m5]" in printed  # escaped: brackets survive
    assert printed.index("aws") < printed.index("note:")


def test_the_local_target_notes_that_it_has_no_gpu() -> None:
    from deployer.local.provider import local_gpu_notes
    from deployer.providers import IMAGE_ACCELERATOR_LABEL, Image, Release

    def release(labels: dict[str, str]) -> Release:
        return Release("demo", Image("demo:1", "sha256:" + "0" * 64, 1, labels), [], {})

    (note,) = local_gpu_notes(release({IMAGE_ACCELERATOR_LABEL: "cuda"}))
    assert "without a GPU" in note
    assert local_gpu_notes(release({})) == []
