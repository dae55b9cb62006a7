"""Reading a data set in batches: errors found past the first block name the column, and
progress is reported as rows go through."""

from __future__ import annotations

from pathlib import Path

import pytest
from evaluation_support import evaluate

from deployer import Project
from deployer.evaluation import data


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("later.csv", "y,f0,f1,f2\n" + "1,1,2,3\n" * 40 + "0,1,x,3\n"),
        (
            "later.jsonl",
            '{"f0": 1, "f1": 2, "f2": 3, "y": 1}\n' * 40
            + '{"f0": 1, "f1": "x", "f2": 3, "y": 0}\n',
        ),
    ],
)
def test_a_bad_value_past_the_first_block_names_the_column(
    binary_project: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str
) -> None:
    monkeypatch.setattr(data, "BLOCK_BYTES", 64)  # the first block holds only good rows
    (binary_project / name).write_text(text)
    result = evaluate(binary_project, "--data", str(binary_project / name), "--label", "y")
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert f"{name}: cannot read it as" in message
    assert "column 'f1'" in message  # by name, though the label comes first in the CSV


def test_progress_is_reported_per_batch(binary_project: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    project = Project.load(binary_project / "deployer.yaml")
    project.evaluate(
        binary_project / "holdout.parquet",
        "y",
        batch_size=64,
        record=False,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(64, 200), (128, 200), (192, 200), (200, 200)]
    calls.clear()
    project.evaluate(
        binary_project / "holdout.csv",
        "y",
        batch_size=150,
        record=False,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(150, None), (200, None)]
