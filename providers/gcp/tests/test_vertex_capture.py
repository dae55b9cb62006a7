"""Prediction capture on Vertex AI: the endpoint's request-response logging, planned,
applied through the real SDK to the fake (which checks it against the v1 reference), and
read back from the fake BigQuery through the real google-cloud-bigquery client."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from vertex_support import PROJECT_ID, push, release

from deployer.errors import DeployerError
from deployer.providers import UsageError
from deployer.providers.monitoring import CaptureSpec, CapturesPredictions
from deployer_gcp.provider import VertexProvider

LOGGING = "predict_request_response_logging_config"


def target(vertex: Any, **overrides: Any) -> VertexProvider:
    from vertex_support import provider

    return provider(vertex.address, bigquery_endpoint=vertex.bigquery.host, **overrides)


def capturing(n: int, **spec: Any) -> Any:
    return dataclasses.replace(release(n), capture=CaptureSpec(**{"sample": 0.25, **spec}))


def logging_updates(vertex: Any) -> list[Any]:
    return [r for r in vertex.requests("UpdateEndpoint") if LOGGING in r.update_mask.paths]


def test_plan_shows_the_logging_and_push_creates_the_endpoint_with_it(vertex, adc) -> None:
    provider = target(vertex)
    rel = capturing(1)
    plan = provider.plan(rel)
    assert plan.ok
    line = next(c for c in plan.changes if c.resource.endswith("logging"))
    assert line.action == "create"
    assert f"sampling_rate 0.25 to bq://{PROJECT_ID}" in line.detail
    _, status, _ = push(provider, rel)
    assert status.healthy
    (created,) = vertex.requests("CreateEndpoint")
    sent = created.endpoint.predict_request_response_logging_config
    assert sent.enabled and sent.sampling_rate == pytest.approx(0.25)
    assert sent.bigquery_destination.output_uri == f"bq://{PROJECT_ID}"
    # Vertex names the dataset and table it created; that is still what was asked for
    stored = vertex.endpoint().predict_request_response_logging_config
    endpoint_id = vertex.endpoint().name.rsplit("/", 1)[1]
    assert stored.bigquery_destination.output_uri == (
        f"bq://{PROJECT_ID}.logging_iris_test_gcp_{endpoint_id}.request_response_logging"
    )
    # an identical push changes nothing
    again = provider.plan(rel)
    assert not again.changed
    assert next(c for c in again.changes if c.resource.endswith("logging")).action == "keep"
    deployment, _, _ = push(provider, rel)
    assert not deployment.changed and logging_updates(vertex) == []


def test_a_changed_sample_updates_the_endpoint_and_no_capture_disables_it(vertex, adc) -> None:
    provider = target(vertex)
    push(provider, capturing(1))
    wanted = capturing(1, sample=1.0, destination="bq://demo-project.monitoring.iris")
    line = next(c for c in provider.plan(wanted).changes if c.resource.endswith("logging"))
    assert line.action == "update" and "sampling_rate 1 to bq://demo-project.monitoring.iris" in (
        line.detail
    )
    deployment, status, _ = push(provider, wanted)
    assert status.healthy and not deployment.changed  # the same version stays live
    assert deployment.details["logging"].startswith("request-response logging: sampling_rate 1")
    (update,) = logging_updates(vertex)
    assert list(update.update_mask.paths) == [LOGGING]
    stored = vertex.endpoint().predict_request_response_logging_config
    assert stored.sampling_rate == 1.0
    assert stored.bigquery_destination.output_uri == "bq://demo-project.monitoring.iris"
    push(provider, wanted)
    assert len(logging_updates(vertex)) == 1  # idempotent
    plain = release(1)
    line = next(c for c in provider.plan(plain).changes if c.resource.endswith("logging"))
    assert line.action == "update" and "disabled" in line.detail
    push(provider, plain)
    assert not vertex.endpoint().predict_request_response_logging_config.enabled


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"destination": "gs://bucket/capture"}, ["monitoring.capture.destination", "gs://"]),
        ({"drop": ("ssn",), "hash": ("email",)}, ["monitoring.capture.redact", "ssn, email"]),
        ({"inputs": False}, ["monitoring.capture.inputs"]),
    ],
)
def test_what_vertex_cannot_capture_is_a_plan_problem(vertex, adc, spec, words) -> None:
    provider = target(vertex)
    rel = capturing(1, **spec)
    plan = provider.plan(rel)
    assert not plan.ok
    assert all(word in plan.problems[0] for word in words), plan.problems
    with pytest.raises(UsageError):
        push(provider, rel)
    assert vertex.requests("CreateEndpoint") == []  # nothing touched


def test_the_fake_refuses_a_logging_config_vertex_would_refuse(vertex, adc) -> None:
    provider = target(vertex)
    push(provider, release(1))
    types = provider.api.types
    endpoint = vertex.endpoint().name
    cases = (
        (0.0, "bq://demo-project", "sampling_rate must be in (0, 1]"),
        (1.5, "bq://demo-project", "sampling_rate must be in (0, 1]"),
        (0.5, "gs://bucket/x", "output_uri 'gs://bucket/x' must be bq://"),
    )
    for rate, uri, message in cases:
        bad = types.PredictRequestResponseLoggingConfig(
            enabled=True,
            sampling_rate=rate,
            bigquery_destination=types.BigQueryDestination(output_uri=uri),
        )
        with pytest.raises(DeployerError) as caught:
            provider.api.update_logging(endpoint, bad)
        assert message in str(caught.value)
    assert not vertex.endpoint().predict_request_response_logging_config.enabled


def test_captured_reads_the_logging_table_through_the_bigquery_client(vertex, adc) -> None:
    provider = target(vertex)
    assert isinstance(provider, CapturesPredictions)
    rel = capturing(1, sample=0.5)
    vertex.log_chance = 0.9  # the push's own predictions (wait's check) are not drawn
    push(provider, rel)
    vertex.log_chance = 0.1  # under the rate: logged
    first = provider.invoke(
        json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]}).encode(),
        "application/json",
    )
    assert first.status == 200
    vertex.log_chance = 0.9  # over the rate: not logged
    provider.invoke(b'{"instances": [[0, 0, 0, 0]]}', "application/json")
    vertex.log_chance = 0.1
    middle = datetime.now(timezone.utc)
    provider.api.predict(vertex.endpoint().name, [{"sepal_length": 7.0, "petal_width": 2.0}])
    records = list(provider.captured())
    assert len(records) == 2
    one, named = records
    assert one.rows == [
        {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2},
        {"f0": 6.2, "f1": 2.9, "f2": 4.3, "f3": 1.3},
    ]
    assert one.predictions == [0, 0]
    assert one.version == rel.version
    assert named.rows == [{"sepal_length": 7.0, "petal_width": 2.0}]
    assert one.time <= named.time
    assert [r.request_id for r in provider.captured(since=middle)] == [named.request_id]
    assert list(provider.captured(since=middle + timedelta(hours=1))) == []
    # at the wire: jobs.query, GoogleSQL, @since as a TIMESTAMP parameter, the ADC token
    queries = [r for r in vertex.bigquery.requests if r.path.endswith("/queries")]
    assert len(queries) == 3 and all(
        r.headers["authorization"] == "Bearer ya29.test-token-for-the-fake" for r in queries
    )
    assert queries[0].path == f"/bigquery/v2/projects/{PROJECT_ID}/queries"
    assert "WHERE" not in queries[0].body["query"]
    assert queries[1].body["query"].endswith("WHERE logging_time >= @since ORDER BY logging_time")
    (parameter,) = queries[1].body["queryParameters"]
    assert parameter["parameterType"] == {"type": "TIMESTAMP"}


def test_a_missing_logging_table_names_it(vertex, adc) -> None:
    provider = target(vertex)
    vertex.log_chance = 0.99  # the push's own predictions are not drawn: no table yet
    push(provider, capturing(1, destination="bq://demo-project.monitoring.iris"))
    with pytest.raises(UsageError) as caught:
        list(provider.captured())
    assert "demo-project.monitoring.iris does not exist yet" in str(caught.value)


def test_a_body_that_is_not_instances_is_kept_as_text() -> None:
    from deployer_gcp.captured import record

    row = {
        "request_id": 7,
        "deployed_model_id": "3001",
        "logging_time": datetime(2026, 1, 1),
        "request_payload": ["1,2,", "3,4\n"],
        "response_payload": ['{"predictions": ["setosa"]}'],
    }
    got = record(row, {"3001": "v1"})
    assert got.rows is None and got.extra["request_payload"] == "1,2,3,4\n"
    assert got.predictions == ["setosa"] and got.version == "v1"
    assert got.time == datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_captured_without_capture_names_the_fix(vertex, adc) -> None:
    provider = target(vertex)
    push(provider, release(1))
    with pytest.raises(UsageError) as caught:
        list(provider.captured())
    assert "logs no requests" in str(caught.value)
    assert vertex.bigquery.requests == []
