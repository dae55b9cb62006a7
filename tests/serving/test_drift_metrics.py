"""Streaming drift gauges: with a baked baseline, /metrics has each feature's and the
predictions' PSI since start, equal to baseline_bins.psi over the values sent; without
one, no gauge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serving_support import ServerFactory, oip_request, scrape, serving_settings

from deployer.serving.baseline_bins import Distribution, psi, read_baseline
from deployer.serving.columns import ColumnNames
from deployer.serving.drift_metrics import DriftMetrics

EDGES = [[5.0, 6.0], [2.8, 3.2], [2.0, 4.5], [0.5, 1.5]]
BASELINE = {
    "model_sha256": "0" * 64,
    "features": {
        f"f{i}": {"kind": "numeric", "edges": edges, "fractions": [0.3, 0.4, 0.3], "missing": 0}
        for i, edges in enumerate(EDGES)
    },
    "prediction": {
        "kind": "categorical",
        "categories": ["0", "1", "2"],
        "fractions": [0.33, 0.33, 0.33, 0.01],
        "missing": 0,
    },
}
SENT = np.random.default_rng(7).uniform([4, 2, 1, 0], [8, 4.4, 7, 2.5], size=(60, 4)).round(1)


def expected_psi(values: Any, distribution: dict[str, Any]) -> float:
    dist = Distribution.from_dict(distribution, "test")
    return psi(dist.fractions, dist.counts(values)[0])


@pytest.fixture(scope="module")
def drift_server(
    start_server: ServerFactory, sklearn_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    path = tmp_path_factory.mktemp("baseline") / "baseline.json"
    path.write_text(json.dumps(BASELINE))
    server = start_server(serving_settings("sklearn", sklearn_model_path, baseline_path=str(path)))
    yield server
    server.stop()


def test_the_gauges_are_the_psi_of_the_values_sent(drift_server: Any, sklearn_model: Any) -> None:
    client = drift_server.client
    half = len(SENT) // 2
    assert client.post("/invocations", json={"instances": SENT[:half].tolist()}).status_code == 200
    answer = client.post("/v2/models/iris/infer", json=oip_request(SENT[half:], "FP64"))
    assert answer.status_code == 200, answer.text  # two outputs: counted once
    samples = scrape(client)
    for i in range(4):
        gauge = samples[("deployer_feature_psi", (("feature", f"f{i}"),))]
        want = expected_psi(SENT[:, i], BASELINE["features"][f"f{i}"])
        assert gauge == pytest.approx(want)
    predictions = sklearn_model.predict(SENT)
    assert samples[("deployer_prediction_psi", ())] == pytest.approx(
        expected_psi(predictions, BASELINE["prediction"])
    )


def test_no_baseline_no_gauge(client: Any) -> None:
    names = {name for name, _ in scrape(client)}
    assert not {"deployer_feature_psi", "deployer_prediction_psi"} & names


def test_named_tensor_inputs_count_by_name() -> None:
    features, prediction = read_baseline(BASELINE)
    drift = DriftMetrics(features, prediction, ColumnNames())
    values = SENT[:, 2]
    drift.observe("r", {"f2": values, "image": np.zeros((len(values), 3))}, {"y": np.zeros(60)})
    gauges = {s.labels.get("feature"): s.value for m in drift.collect() for s in m.samples}
    assert gauges["f2"] == pytest.approx(expected_psi(values, BASELINE["features"]["f2"]))
    assert np.isnan(gauges["f0"])  # nothing seen yet
    assert gauges[None] == pytest.approx(expected_psi(np.zeros(60), BASELINE["prediction"]))
