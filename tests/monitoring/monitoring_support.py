"""Helpers of the monitoring tests: a provider that captures (``capturing``: the release
tests' ``fakecloud`` plus ``captured()`` over records a test sets), a small training set
with numbers, categories and missing values, a project around a model trained on it, and
the CLI run in process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from release_support import FakeCloud, Run

from deployer.providers.monitoring import CapturedRecord

# whole hours, 3 h ago: records a minute apart from here are inside ``--since 24h``
START = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


class CapturingCloud(FakeCloud):
    """``provider: capturing``: reads back ``CapturingCloud.records`` (oldest first)."""

    name: ClassVar[str] = "capturing"
    records: ClassVar[list[CapturedRecord]] = []
    asked: ClassVar[list[datetime | None]] = []

    def captured(self, since: datetime | None = None) -> Iterator[CapturedRecord]:
        self.asked.append(since)
        return iter([r for r in self.records if since is None or r.time >= since])


def entry_points() -> dict[str, metadata.EntryPoint]:
    """``fakecloud`` (no capture) and ``capturing``, as ``available_providers`` returns."""
    group = "deployer.providers"
    return {
        "fakecloud": metadata.EntryPoint("fakecloud", "release_support:FakeCloud", group),
        "capturing": metadata.EntryPoint("capturing", "monitoring_support:CapturingCloud", group),
    }


def training_rows(rows: int, seed: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    """x ~ N(shift, 1); n in {1, 2, 3} (a few integers: categorical); color red/blue/green
    (blue takes over when shifted); y = x + noise > 0."""
    generator = np.random.default_rng(seed)
    x = generator.normal(loc=shift, size=rows)
    n = generator.choice([1, 2, 3], size=rows, p=[0.5, 0.3, 0.2])
    shares = [0.2, 0.7, 0.1] if shift else [0.6, 0.3, 0.1]
    color = generator.choice(["red", "blue", "green"], size=rows, p=shares)
    y = (x + generator.normal(scale=0.5, size=rows) > 0).astype(int)
    return {"x": x, "n": n, "color": color, "y": y}


def write_csv(path: Path, columns: dict[str, Any]) -> Path:
    names = list(columns)
    lines = [",".join(names)]
    lines += [",".join(str(v) for v in row) for row in zip(*columns.values(), strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_project(folder: Path, seed: int = 3) -> Path:
    """A classifier on x and n (named columns: the model's feature names), trained on
    ``training_rows``, deployer.yaml with targets ``live`` (capturing) and ``plain``
    (fakecloud), and train.csv; returns deployer.yaml."""
    import joblib
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    folder.mkdir(parents=True, exist_ok=True)
    data = training_rows(400, seed)
    frame = pd.DataFrame({"x": data["x"], "n": data["n"]})
    joblib.dump(LogisticRegression().fit(frame, data["y"]), folder / "model.joblib")
    write_csv(folder / "train.csv", data)
    (folder / "deployer.yaml").write_text(
        "name: watched\nmodel: {path: model.joblib}\ntargets:\n"
        "  live: {provider: capturing}\n  plain: {provider: fakecloud}\n"
        "monitoring:\n  drift: {min_rows: 100}\n"
    )
    return folder / "deployer.yaml"


def records_of(
    columns: dict[str, np.ndarray], predictions: list[Any], per_record: int = 10
) -> list[CapturedRecord]:
    """The rows as captured requests of ``per_record`` rows each, a minute apart."""
    names = [n for n in columns if n != "y"]
    rows = [{name: _plain(columns[name][i]) for name in names} for i in range(len(predictions))]
    out = []
    for k, start in enumerate(range(0, len(rows), per_record)):
        out.append(
            CapturedRecord(
                f"req-{k}",
                START + timedelta(minutes=k),
                rows[start : start + per_record],
                [_plain(p) for p in predictions[start : start + per_record]],
                "v1",
            )
        )
    return out


def _plain(value: Any) -> Any:
    """A numpy scalar as the JSON value a captured record holds."""
    return value.item() if hasattr(value, "item") else value


def cli(*args: str) -> Run:
    """``deployer ARGS`` in this process (so the fake providers apply)."""
    from typer.testing import CliRunner

    from deployer.cli import app

    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})
    return Run(result.exit_code, result.stdout, result.stderr)


def json_of(run: Run) -> Any:
    return json.loads(run.stdout)
