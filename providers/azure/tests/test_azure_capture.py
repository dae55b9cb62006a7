"""Prediction capture on Azure ML: the deployment's data collector (payload logging),
checked by the fake against azure-ai-ml's REST models and the collector's limits, shown
by plan, idempotent; and ``captured()`` reading what the collector wrote (the fake
writes its JSON lines to Azurite as Azure's collector does)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from azure_fake import FakeAzureML
from azure_support import image_ref, release
from azurite_support import azurite_blob

from deployer.providers import Strategy, UsageError
from deployer.providers.monitoring import CaptureSpec
from deployer_azure import names

SPEC = CaptureSpec(sample=0.25)


def quiet(_message: str) -> None:
    return None


def captured_release(number: int, spec: CaptureSpec | None = SPEC) -> Any:
    return dataclasses.replace(release(number), capture=spec)


def push(provider: Any, fake: FakeAzureML, number: int, spec: CaptureSpec | None = SPEC) -> Any:
    rel = captured_release(number, spec)
    deployment = provider.deploy(rel, image_ref(fake, number), Strategy.parse("all-at-once"), quiet)
    return provider.wait(deployment, 120, quiet)


def deployment_puts(fake: FakeAzureML, number: int) -> list[Any]:
    name = names.deployment_name(release(number).version)
    return [r for r in fake.requests_to("PUT", f"/deployments/{name}") if r.status < 300]


def test_the_data_collector_logs_request_and_response_payloads_at_the_rate(
    fake: FakeAzureML, make_provider: Any
) -> None:
    provider = make_provider()
    plan = provider.plan(captured_release(1))
    assert not plan.problems
    created = next(c for c in plan.changes if c.resource.startswith("deployment"))
    assert "data collector: request and response payloads, sampling_rate 0.25" in created.detail
    assert push(provider, fake, 1).healthy
    body = deployment_puts(fake, 1)[0].body
    collector = body["properties"]["dataCollector"]
    assert set(collector["collections"]) == {"request", "response"}
    for collection in collector["collections"].values():
        assert collection["samplingRate"] == 0.25
        assert collection["dataCollectionMode"].lower() == "enabled"
        assert "/data/" in collection["dataId"]
    assert collector["rollingRate"] == "Hour"
    assert not fake.refused


def test_an_identical_push_changes_nothing_and_a_new_rate_updates_in_place(
    fake: FakeAzureML, make_provider: Any
) -> None:
    provider = make_provider()
    assert push(provider, fake, 1).healthy
    plan = provider.plan(captured_release(1))
    assert [c.action for c in plan.changes] == ["keep"]
    again = provider.deploy(
        captured_release(1), image_ref(fake, 1), Strategy.parse("all-at-once"), quiet
    )
    assert not again.changed and len(deployment_puts(fake, 1)) == 1

    faster = CaptureSpec(sample=1.0, outputs=False)
    plan = provider.plan(captured_release(1, faster))
    assert [(c.action, c.detail) for c in plan.changes] == [
        (
            "update",
            "data collector: request payloads, sampling_rate 1, rolling hourly, to "
            "azureml://datastores/workspaceblobstore/paths/modelDataCollector",
        )
    ]
    assert push(provider, fake, 1, faster).healthy
    puts = deployment_puts(fake, 1)
    assert len(puts) == 2
    collections = puts[-1].body["properties"]["dataCollector"]["collections"]
    assert list(collections) == ["request"] and collections["request"]["samplingRate"] == 1.0
    assert [c.action for c in provider.plan(captured_release(1, faster)).changes] == ["keep"]
    assert provider.status().version == release(1).version
    assert not fake.refused


def test_redact_is_a_plan_problem_azure_cannot_drop_or_hash(
    fake: FakeAzureML, make_provider: Any
) -> None:
    spec = CaptureSpec(sample=0.5, drop=("ssn",), hash=("email",))
    plan = make_provider().plan(captured_release(1, spec))
    assert len(plan.problems) == 1
    assert "cannot drop or hash fields (drop ssn, hash email)" in plan.problems[0]
    assert "monitoring.capture.redact" in plan.problems[0]


@pytest.mark.parametrize(
    ("destination", "datastore", "path"),
    [
        ("az://devstoreaccount1/captures/prod", "captures_store", "prod"),
        ("azureml://datastores/other/paths/mdc/", "other", "mdc"),
    ],
)
def test_a_destination_names_a_datastore_path(
    fake: FakeAzureML, make_provider: Any, destination: str, datastore: str, path: str
) -> None:
    fake.capture.add_datastore("captures_store", "captures")
    fake.capture.add_datastore("other", "other-container")
    spec = CaptureSpec(sample=0.1, destination=destination)
    provider = make_provider()
    assert not provider.plan(captured_release(1, spec)).problems
    assert push(provider, fake, 1, spec).healthy
    uris = sorted(d["properties"]["dataUri"] for d in fake.capture.data.values())
    dep = names.deployment_name(release(1).version)
    assert uris == [
        f"azureml://datastores/{datastore}/paths/{path}/iris-azure/{dep}/{c}"
        for c in ("request", "response")
    ]


@pytest.mark.parametrize(
    ("destination", "expected"),
    [
        ("s3://bucket/captures", "is not a place Azure ML's data collector writes to"),
        ("az://someaccount/nocontainer", "no datastore of the workspace is the container"),
    ],
)
def test_a_destination_azure_cannot_write_to_is_a_plan_problem(
    fake: FakeAzureML, make_provider: Any, destination: str, expected: str
) -> None:
    spec = CaptureSpec(sample=0.1, destination=destination)
    plan = make_provider().plan(captured_release(1, spec))
    assert len(plan.problems) == 1 and expected in plan.problems[0]
    assert destination.split("/")[2] in plan.problems[0]


def test_the_fake_refuses_a_collector_outside_the_services_limits(fake: FakeAzureML) -> None:
    body = {
        "properties": {
            "dataCollector": {
                "collections": {
                    "request": {"samplingRate": 1.5, "dataCollectionMode": "Enabled"},
                    "response": {"dataCollectionMode": "Sometimes", "dataId": "/nope"},
                },
                "rollingRate": "Week",
            }
        }
    }
    problems = fake.capture.collector_problems(body)
    assert any("samplingRate: 1.5 is not a rate within [0, 1]" in p for p in problems)
    assert any("dataCollectionMode: 'sometimes'" in p for p in problems)
    assert any("rollingRate: 'Week'" in p for p in problems)
    assert any("dataId: '/nope' is not a data asset" in p for p in problems)
    empty = {"properties": {"dataCollector": {"collections": {}}}}
    assert fake.capture.collector_problems(empty) == [
        "onlineDeployment.properties.dataCollector.collections: required, at least one collection"
    ]


@pytest.fixture(scope="module")
def azurite() -> Iterator[str]:
    with azurite_blob() as connection:
        yield connection


@pytest.fixture
def collecting(fake: FakeAzureML, azurite: str, monkeypatch: pytest.MonkeyPatch) -> FakeAzureML:
    """The fake's collector writes to Azurite, and ``az://`` reads find it."""
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    fake.capture.connection = azurite
    fake.capture.datastores["workspaceblobstore"]["properties"]["containerName"] = (
        f"blobstore-{uuid.uuid4().hex[:12]}"  # a fresh container per test
    )
    return fake


def test_captured_reads_the_collectors_json_lines_back(
    collecting: FakeAzureML, make_provider: Any
) -> None:
    provider = make_provider()
    before = datetime.now(timezone.utc).replace(microsecond=0)
    assert push(provider, collecting, 1, CaptureSpec(sample=1.0)).healthy
    bodies = [
        {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]},
        [{"sepal": 1.0, "petal": 2.0}],
    ]
    for body in bodies:
        assert provider.invoke(json.dumps(body).encode(), "application/json").status == 200
    written = collecting.capture.written
    assert {w.record["type"] for w in written} == {
        "azureml.inference.request",
        "azureml.inference.response",
    }
    assert all(w.blob.startswith("modelDataCollector/iris-azure/v") for w in written)

    records = list(provider.captured(since=before))
    smoke = [{str(i): 0 for i in range(4)}] * 2  # wait()'s smoke test, captured too
    assert [r.rows for r in records][:1] == [smoke]
    assert sorted(map(json.dumps, (r.rows for r in records[1:]))) == sorted(
        map(
            json.dumps,
            [
                [
                    {"0": 5.1, "1": 3.5, "2": 1.4, "3": 0.2},
                    {"0": 6.7, "1": 3.0, "2": 5.2, "3": 2.3},
                ],
                [{"sepal": 1.0, "petal": 2.0}],
            ],
        )
    )
    assert sorted(len(r.predictions or []) for r in records) == [1, 2, 2]
    assert {r.version for r in records} == {release(1).version}
    assert all(r.time >= before for r in records)
    assert len({r.request_id for r in records}) == 3
    # nothing written after this moment: an empty answer, not an error
    assert list(provider.captured(since=datetime.now(timezone.utc) + timedelta(hours=2))) == []


def test_sampling_writes_about_the_rate_and_no_capture_is_a_usage_error(
    collecting: FakeAzureML, make_provider: Any
) -> None:
    provider = make_provider()
    assert push(provider, collecting, 1, None).healthy
    with pytest.raises(UsageError, match="no deployment of endpoint iris-azure collects data"):
        list(provider.captured())
    assert push(provider, collecting, 1, CaptureSpec(sample=0.25)).healthy
    for _ in range(40):
        provider.invoke(b"[[1, 2, 3, 4]]", "application/json")
    sampled = len(list(provider.captured()))
    assert 0 < sampled < 40  # seeded: the fake samples as Azure does, not every call
    assert len(collecting.capture.written) == 2 * sampled


@pytest.mark.parametrize(
    ("data", "rows"),
    [
        ({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}, [{"a": 1, "b": 2}]),
        ({"inputs": [3, 4]}, [{"0": 3, "1": 4}]),
        ([[1], [2]], [{"0": 1}, {"0": 2}]),
        ("a,b\n1,2", []),
    ],
)
def test_a_request_payload_becomes_named_rows(data: Any, rows: list[Any]) -> None:
    from deployer_azure.captured import _rows

    assert _rows(data) == rows
