"""Platform model artifacts are noticed and named, never used in place of the baked model."""

from __future__ import annotations

from pathlib import Path

from deployer.image.context import MODEL_DIR
from deployer.serving.artifacts import artifact_notices, platform_artifacts


def test_the_baked_model_lives_outside_the_folder_sagemaker_mounts() -> None:
    assert not MODEL_DIR.startswith("/opt/ml")


def test_nothing_offered_means_no_notice(tmp_path: Path) -> None:
    empty = tmp_path / "opt-ml-model"
    empty.mkdir()
    assert platform_artifacts({}, sagemaker_dir=str(empty)) == []
    assert platform_artifacts({"AZUREML_MODEL_DIR": str(empty)}, str(tmp_path / "none")) == []


def test_each_platform_artifact_is_named(tmp_path: Path) -> None:
    sagemaker = tmp_path / "sagemaker"
    sagemaker.mkdir()
    (sagemaker / "model.tar.gz").write_bytes(b"x")
    azure = tmp_path / "azureml"
    (azure / "model" / "1").mkdir(parents=True)
    env = {"AIP_STORAGE_URI": "gs://bucket/model", "AZUREML_MODEL_DIR": str(azure)}
    found = platform_artifacts(env, sagemaker_dir=str(sagemaker))
    assert found == [
        f"SageMaker's model data at {sagemaker}",
        "Vertex AI's artifact at AIP_STORAGE_URI=gs://bucket/model",
        f"Azure ML's model at AZUREML_MODEL_DIR={azure}",
    ]


def test_the_notice_names_the_model_that_serves() -> None:
    (notice,) = artifact_notices(
        "/opt/deployer/model/model.joblib", {"AIP_STORAGE_URI": "gs://b/m"}
    )
    assert notice == (
        "not using Vertex AI's artifact at AIP_STORAGE_URI=gs://b/m: this image serves the "
        "model built into it (/opt/deployer/model/model.joblib)"
    )
