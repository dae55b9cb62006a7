"""The transformers flavour in-process: save_pretrained folders (tiny models built from
configs, nothing downloaded) detected, their task inferred, predictions equal to
``transformers.pipeline``'s own, one text at a time or padded in a batch; bad options,
parameters and folders named; ``deployer init`` and ``validate``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_support import imported_by
from serving_support import load_example

from deployer.errors import MissingDependencyError
from deployer.flavors import ModelLoadError, detect_flavor, load_model
from deployer.flavors.base import LoadedModel, RequestError
from deployer.flavors.transformers_flavor import task_for

pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
transformers.utils.logging.disable_progress_bar()  # tqdm's monitor thread would outlive us
example = load_example("transformers/create.py")

# Different lengths, so a batch pads every text but the longest.
TEXTS = ["the cat sat on the mat and the dog sat on it", "good movie", "i love paris", "bad"]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    yield


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf")
    return {kind: example.build(root / kind, kind) for kind in example.KINDS}


@pytest.fixture(scope="module")
def loaded(folders: dict[str, Path]) -> dict[str, LoadedModel]:
    return {kind: load_model("transformers", str(folder)) for kind, folder in folders.items()}


def text(*values: Any) -> dict[str, np.ndarray]:
    return {"text": np.array(list(values), dtype=object)}


def direct(folder: Path, task: str, **kwargs: Any) -> Any:
    pipe = transformers.pipeline(task, model=str(folder), tokenizer=str(folder), device="cpu")
    return pipe, [pipe(t, **kwargs) for t in TEXTS]


# --- detection and task -------------------------------------------------------------------


def test_detects_a_save_pretrained_folder(folders: dict[str, Path], tmp_path: Path) -> None:
    assert detect_flavor(str(folders["classifier"])) == "transformers"
    (tmp_path / "config.json").write_text("{}")
    assert detect_flavor(str(tmp_path)) is None  # no tokenizer files: not a text model


@pytest.mark.parametrize(
    ("architectures", "task"),
    [
        (["BertForSequenceClassification"], "text-classification"),
        (["DistilBertForTokenClassification"], "token-classification"),
        (["GPT2LMHeadModel"], "text-generation"),
        (["LlamaForCausalLM"], "text-generation"),
        (["BertModel"], "feature-extraction"),
        (["BertForMaskedLM"], None),
        ([], None),
    ],
)
def test_task_from_architectures(architectures: list[str], task: str | None) -> None:
    assert task_for(architectures) == task


def test_signatures_per_task(loaded: dict[str, LoadedModel]) -> None:
    text_input = [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    outputs = {kind: model.signature.to_dict()["outputs"] for kind, model in loaded.items()}
    assert all(m.signature.to_dict()["inputs"] == text_input for m in loaded.values())
    assert outputs == {
        "classifier": [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "score", "datatype": "FP32", "shape": [-1]},
        ],
        "tagger": [{"name": "entities", "datatype": "BYTES", "shape": [-1]}],
        "encoder": [{"name": "embedding", "datatype": "FP32", "shape": [-1, 32]}],
        "generator": [{"name": "generated_text", "datatype": "BYTES", "shape": [-1]}],
    }
    assert {k: m.batchable for k, m in loaded.items()} == {
        "classifier": True, "tagger": True, "encoder": True, "generator": False,
    }  # fmt: skip


def test_unknown_architecture_names_the_file_the_architectures_and_the_tasks(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "masked"
    folder.mkdir()
    for item in folders["encoder"].iterdir():
        (folder / item.name).write_bytes(item.read_bytes())
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(
        json.dumps({**config, "architectures": ["BertForMaskedLM"]})
    )
    with pytest.raises(ModelLoadError) as info:
        load_model("transformers", str(folder))
    message = str(info.value)
    for part in (str(folder / "config.json"), "BertForMaskedLM", "text-classification",
                 "feature-extraction", "model.options.task"):  # fmt: skip
        assert part in message, message
    # the task option overrides the architectures
    model = load_model("transformers", str(folder), {"task": "embeddings"})
    assert model.signature.methods == ("embedding",)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"task": "summarization"}, ["'summarization'", "text-classification"]),
        ({"top_k": 0}, ["model.options.top_k", "positive integer"]),
        ({"aggregation_strategy": "most"}, ["aggregation_strategy", "'most'", "simple"]),
        ({"inputs": [{"name": "x"}]}, ["inputs", "model.options may set"]),
    ],
)
def test_bad_options_are_named(
    folders: dict[str, Path], options: dict[str, Any], named: list[str]
) -> None:
    with pytest.raises(ModelLoadError) as info:
        load_model("transformers", str(folders["classifier"]), options)
    for part in named:
        assert part in str(info.value), str(info.value)


def test_folder_without_config_or_tokenizer(folders: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        load_model("transformers", str(tmp_path))
    assert f"{tmp_path / 'config.json'} does not exist" in str(info.value)
    (tmp_path / "config.json").write_bytes((folders["encoder"] / "config.json").read_bytes())
    with pytest.raises(ModelLoadError) as info:
        load_model("transformers", str(tmp_path))
    assert "no tokenizer files" in str(info.value) and "tokenizer.save_pretrained" in str(
        info.value
    )


def test_missing_transformers_names_the_extra(
    folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependencyError) as info:
        load_model("transformers", str(folders["classifier"]))
    assert "'transformers' package" in info.value.message
    assert info.value.hint == "pip install 'deployer[transformers]'"


def test_load_switches_the_hub_off(
    folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    load_model("transformers", str(folders["classifier"]))
    assert os.environ["HF_HUB_OFFLINE"] == "1"


# --- predictions equal the pipeline's, alone or padded in a batch -------------------------


def test_classification_equals_the_pipeline_alone_and_in_a_batch(
    folders: dict[str, Path], loaded: dict[str, LoadedModel]
) -> None:
    _, answers = direct(folders["classifier"], "text-classification")
    batch = loaded["classifier"].predict(text(*TEXTS), "label", {})
    assert batch["label"].tolist() == [a[0]["label"] for a in answers]
    np.testing.assert_allclose(batch["score"], [a[0]["score"] for a in answers], rtol=1e-5)
    assert len(set(np.round(batch["score"], 6).tolist())) > 1  # the texts really differ
    alone = [loaded["classifier"].predict(text(t), "label", {}) for t in TEXTS]
    np.testing.assert_allclose(batch["score"], [a["score"][0] for a in alone], rtol=1e-5)


def test_classification_top_k(folders: dict[str, Path], loaded: dict[str, LoadedModel]) -> None:
    _, answers = direct(folders["classifier"], "text-classification", top_k=2)
    result = loaded["classifier"].predict(text(*TEXTS), "label", {"top_k": 2})
    assert result["label"].shape == (4, 2) and result["score"].shape == (4, 2)
    assert result["label"].tolist() == [[a["label"] for a in row] for row in answers]
    with pytest.raises(RequestError, match="parameter top_k must be a positive integer"):
        loaded["classifier"].predict(text("good"), "label", {"top_k": "many"})
    default = load_model("transformers", str(folders["classifier"]), {"top_k": 2})
    assert default.predict(text("good"), "label", {})["label"].shape == (1, 2)


def test_token_classification_is_json_per_text(
    folders: dict[str, Path], loaded: dict[str, LoadedModel]
) -> None:
    _, answers = direct(folders["tagger"], "token-classification", aggregation_strategy="simple")
    batch = loaded["tagger"].predict(text(*TEXTS), "entities", {})
    decoded = [json.loads(row) for row in batch]
    assert [[e["word"] for e in row] for row in decoded] == [
        [e["word"] for e in row] for row in answers
    ]
    for row, expected in zip(decoded, answers, strict=True):
        np.testing.assert_allclose(
            [e["score"] for e in row], [e["score"] for e in expected], rtol=1e-5
        )
        assert {k for e in row for k in e} <= {"entity_group", "score", "word", "start", "end"}


def test_embeddings_are_the_mean_of_the_pipelines_features_alone_and_in_a_batch(
    folders: dict[str, Path], loaded: dict[str, LoadedModel]
) -> None:
    _, features = direct(folders["encoder"], "feature-extraction")
    expected = np.array([np.mean(np.array(f)[0], axis=0) for f in features], dtype=np.float32)
    batch = loaded["encoder"].predict(text(*TEXTS), "embedding", {})
    assert batch.shape == (4, 32) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, expected, rtol=1e-4, atol=1e-5)
    alone = np.concatenate([loaded["encoder"].predict(text(t), "embedding", {}) for t in TEXTS])
    np.testing.assert_allclose(batch, alone, rtol=1e-4, atol=1e-5)


def test_long_texts_are_truncated_to_the_model_max_length(loaded: dict[str, LoadedModel]) -> None:
    long = " ".join(["good"] * 500)  # 64 position embeddings: untruncated, the model fails
    assert loaded["encoder"].predict(text(long, "bad"), "embedding", {}).shape == (2, 32)
    assert loaded["classifier"].predict(text(long), "label", {})["label"].shape == (1,)


def test_generation_equals_the_pipeline_and_is_bounded(
    folders: dict[str, Path], loaded: dict[str, LoadedModel]
) -> None:
    _, answers = direct(folders["generator"], "text-generation", max_new_tokens=4)
    result = loaded["generator"].predict(text(*TEXTS), "generated_text", {"max_new_tokens": 4})
    assert result.tolist() == [a[0]["generated_text"] for a in answers]
    assert all(r.startswith(t) and len(r) > len(t) for r, t in zip(result, TEXTS, strict=True))
    with pytest.raises(RequestError, match="max_new_tokens is 65; this model allows at most 64"):
        loaded["generator"].predict(text("hello"), "generated_text", {"max_new_tokens": 65})
    bounded = load_model("transformers", str(folders["generator"]), {"max_new_tokens": 2})
    with pytest.raises(RequestError, match="at most 2"):
        bounded.predict(text("hello"), "generated_text", {"max_new_tokens": 3})


def test_bytes_text_is_decoded_and_non_utf8_refused(loaded: dict[str, LoadedModel]) -> None:
    as_bytes = loaded["classifier"].predict(text(b"good movie"), "label", {})
    as_text = loaded["classifier"].predict(text("good movie"), "label", {})
    assert as_bytes["label"].tolist() == as_text["label"].tolist()
    with pytest.raises(RequestError, match="input 'text' row 0 is not UTF-8"):
        loaded["classifier"].predict(text(b"\xff"), "label", {})


# --- the CLI ------------------------------------------------------------------------------


def test_init_detects_the_folder_and_validate_loads_it(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    model = tmp_path / "sentiment"
    model.mkdir()
    for item in folders["classifier"].iterdir():
        (model / item.name).write_bytes(item.read_bytes())
    deployer = [sys.executable, "-m", "deployer"]
    init = subprocess.run(
        [*deployer, "init", "--model", "sentiment"], cwd=tmp_path, capture_output=True, text=True
    )
    assert init.returncode == 0, init.stderr
    written = (tmp_path / "deployer.yaml").read_text()
    assert "flavor: transformers" in written and "task: text-classification" in written
    check = subprocess.run(
        [*deployer, "validate", "-o", "json"], cwd=tmp_path, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    assert '"name": "label"' in check.stdout


def test_validate_names_a_bad_task_option(folders: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "deployer.yaml").write_text(
        f"version: 1\nname: hf\nmodel:\n  path: {folders['classifier']}\n"
        "  options: {task: translation}\n"
    )
    check = subprocess.run(
        [sys.executable, "-m", "deployer", "validate"], cwd=tmp_path, capture_output=True, text=True
    )
    assert check.returncode != 0
    assert "'translation'" in check.stderr and "text-classification" in check.stderr
    assert "Traceback" not in check.stderr


def test_help_and_detection_import_no_transformers_or_torch(folders: dict[str, Path]) -> None:
    for code in (
        "from deployer.cli import main\nimport sys\nsys.argv=['deployer','--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass",
        "from deployer.flavors import detect_flavor\n"
        f"detect_flavor({str(folders['classifier'])!r})",
    ):
        modules = imported_by(code)
        assert "deployer" in modules
        assert not [m for m in modules if m.split(".")[0] in ("transformers", "torch")]


def test_image_pins_torch_transformers_and_tokenizers_to_the_host() -> None:
    from importlib import metadata

    from deployer.image.wheelhouse import image_requirements

    requirements = image_requirements("transformers", ())
    for package in ("torch", "transformers", "tokenizers"):
        assert f"{package}=={metadata.version(package)}" in requirements
    assert not any(r.startswith("torch") for r in image_requirements("sklearn", ()))
