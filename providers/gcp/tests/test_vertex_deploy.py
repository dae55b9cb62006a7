"""The deploy lifecycle against the fake Vertex AI, through the real google-cloud-aiplatform."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from vertex_fake import FakeVertex
from vertex_support import PROJECT, TARGET, TOKEN, provider, push, release

from deployer.errors import UsageError
from deployer.serving import routes
from deployer_gcp import rollout

V1, V2, V3 = (release(n).version for n in (1, 2, 3))


@dataclass
class Bakes:
    """Stands in for ``time`` in deployer_gcp.rollout: a bake is recorded, with the traffic
    split and the number of predictions at that moment, and returns at once."""

    vertex: FakeVertex
    sleeps: list[tuple[float, dict[str, int], int]] = field(default_factory=list)

    @staticmethod
    def monotonic() -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append((seconds, self.vertex.traffic(), len(self.vertex.requests("Predict"))))


@pytest.fixture
def bakes(vertex: FakeVertex, monkeypatch: pytest.MonkeyPatch) -> Bakes:
    recorder = Bakes(vertex)
    monkeypatch.setattr(rollout, "time", recorder)
    return recorder


def eventually(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:g}s"
        time.sleep(0.02)


def waited_seconds(reason: str) -> float:
    """The N of ``timed out after Ns`` in a status reason."""
    found = re.search(r"timed out after (\d+(?:\.\d+)?)s", reason)
    assert found, reason
    return float(found.group(1))


def deployed_ids(vertex: FakeVertex) -> dict[str, str]:
    """Deployed model id -> version, on the one endpoint."""
    return {dm.id: dm.display_name for dm in vertex.endpoint().deployed_models}


def id_of(vertex: FakeVertex, version: str) -> str:
    return next(k for k, v in deployed_ids(vertex).items() if v == version)


def model_versions(vertex: FakeVertex) -> set[str]:
    return {m.labels["deployer-version"] for m in vertex.models.values()}


def test_first_deploy_creates_a_labelled_endpoint_model_and_deployment(vertex, adc) -> None:
    target = provider(
        vertex.address,
        machine_type="n1-standard-4",
        min_replicas=2,
        max_replicas=5,
        service_account="serving@demo-project.iam.gserviceaccount.com",
        env={"LOG_LEVEL": "debug"},
    )
    assert target.status().state == "absent"
    deployment, status, notes = push(target, release(1))

    assert deployment.changed and deployment.version == V1
    assert deployment.previous_version is None
    assert status.healthy and status.version == V1
    endpoint = vertex.endpoint()
    assert status.url == f"https://{vertex.address}/v1/{endpoint.name}:rawPredict"
    assert endpoint.display_name == f"{PROJECT}-{TARGET}"
    assert dict(endpoint.labels) == {
        "deployer-project": PROJECT,
        "deployer-target": TARGET,
        "deployer-version": V1,
    }
    (model,) = vertex.models.values()
    assert dict(model.labels) == {**dict(endpoint.labels), "deployer-version": V1}
    spec = model.container_spec
    assert (spec.predict_route, spec.health_route) == (routes.VERTEX_PREDICT, routes.VERTEX_HEALTH)
    assert [p.container_port for p in spec.ports] == [8080]
    assert {e.name: e.value for e in spec.env} == {"LOG_LEVEL": "debug"}
    (request,) = vertex.requests("DeployModel")
    assert dict(request.traffic_split) == {"0": 100}
    deployed = request.deployed_model
    assert deployed.display_name == V1 and deployed.model == model.name
    resources = deployed.dedicated_resources
    assert resources.machine_spec.machine_type == "n1-standard-4"
    assert (resources.min_replica_count, resources.max_replica_count) == (2, 5)
    assert deployed.service_account == "serving@demo-project.iam.gserviceaccount.com"
    assert vertex.traffic() == {V1: 100}
    # ADC with the cloud-platform scope; every call carried its token.
    assert adc.calls == [{"scopes": ["https://www.googleapis.com/auth/cloud-platform"]}]
    assert {m.get("authorization") for m in vertex.metadata("DeployModel")} == {f"Bearer {TOKEN}"}
    assert any("creating endpoint" in n for n in notes)


def test_redeploying_the_live_version_changes_nothing(vertex, adc) -> None:
    target = provider(vertex.address)
    push(target, release(1))
    before = len(vertex.calls)
    deployment, status, notes = push(provider(vertex.address), release(1), "canary:10")
    assert not deployment.changed and status.healthy
    assert deployment.previous_version == V1
    mutating = {"CreateEndpoint", "UploadModel", "DeployModel", "UndeployModel", "UpdateEndpoint"}
    assert not [c for c, _, _ in vertex.calls[before:] if c in mutating]
    assert "already live" in notes[0]


def test_plan_is_read_only_and_describes_the_change(vertex, adc) -> None:
    target = provider(vertex.address)
    plan = target.plan(release(1))
    assert [(c.action, c.resource.split()[0]) for c in plan.changes] == [
        ("create", "endpoint"),
        ("create", "model"),
        ("update", "endpoint"),
    ]
    assert {c for c, _, _ in vertex.calls} <= {"ListEndpoints", "ListModels"}
    push(target, release(1))
    assert not target.plan(release(1)).changed
    plan = target.plan(release(2))
    assert [c.action for c in plan.changes] == ["create", "update", "delete"]
    assert V1 in plan.changes[-1].resource


def test_all_at_once_moves_all_traffic_then_undeploys_the_old_model(vertex, adc) -> None:
    target = provider(vertex.address)
    push(target, release(1))
    old = id_of(vertex, V1)
    deployment, status, _ = push(target, release(2))
    assert status.healthy and status.version == V2 and deployment.previous_version == V1
    assert dict(vertex.requests("DeployModel")[-1].traffic_split) == {"0": 100, old: 0}
    (undeploy,) = vertex.requests("UndeployModel")
    assert undeploy.deployed_model_id == old
    assert vertex.traffic() == {V2: 100}
    # The previous Model is kept for rollback; the endpoint records both versions.
    assert model_versions(vertex) == {V1, V2}
    labels = vertex.endpoint().labels
    assert (labels["deployer-version"], labels["deployer-previous"]) == (V2, V1)


def test_canary_sends_a_share_bakes_checks_then_promotes(vertex, adc, bakes) -> None:
    target = provider(vertex.address)
    push(target, release(1))
    old = id_of(vertex, V1)
    predictions = len(vertex.requests("Predict"))
    _, status, notes = push(target, release(2), "canary:10", bake=0.3)
    # one bake of 0.3 s, with 10% on the new version, before the health check's predictions
    assert bakes.sleeps == [(0.3, {V1: 90, V2: 10}, predictions)]
    assert status.healthy and status.version == V2
    assert dict(vertex.requests("DeployModel")[-1].traffic_split) == {"0": 10, old: 90}
    (update,) = [
        r for r in vertex.requests("UpdateEndpoint") if "labels" not in r.update_mask.paths
    ]
    new = next(k for k in update.endpoint.traffic_split if k != old)
    assert dict(update.endpoint.traffic_split) == {new: 100, old: 0}
    # Smoke predictions until the new deployed model answered one (Predict names it).
    assert len(vertex.requests("Predict")) > predictions
    assert any("baking" in n for n in notes)
    assert vertex.traffic() == {V2: 100}


def test_linear_moves_traffic_in_steps(vertex, adc) -> None:
    target = provider(vertex.address)
    push(target, release(1))
    old = id_of(vertex, V1)
    _, status, _ = push(target, release(2), "linear:25")
    assert status.healthy and status.version == V2
    assert dict(vertex.requests("DeployModel")[-1].traffic_split) == {"0": 25, old: 75}
    splits = [
        dict(r.endpoint.traffic_split)
        for r in vertex.requests("UpdateEndpoint")
        if "labels" not in r.update_mask.paths
    ]
    new = next(k for k in splits[0] if k != old)
    assert splits == [{new: 50, old: 50}, {new: 75, old: 25}, {new: 100, old: 0}]


def test_an_unhealthy_canary_is_rolled_back_automatically(vertex, adc) -> None:
    target = provider(vertex.address)
    push(target, release(1))
    vertex.broken.add(V2)  # the new version's container answers 500
    _, status, _ = push(target, release(2), "canary:20")
    assert status.state == "failed" and status.version == V1
    assert "500" in status.reason or "INTERNAL" in status.reason
    assert "rolled back automatically" in status.reason and "model crashed" in status.reason
    assert vertex.traffic() == {V1: 100}
    assert set(deployed_ids(vertex).values()) == {V1}
    assert target.status().healthy


def test_a_failed_deploy_operation_reports_vertex_reason_and_keeps_the_old_version(
    vertex, adc
) -> None:
    target = provider(vertex.address)
    push(target, release(1))
    reason = "Model server never became ready. Please validate your container configuration."
    vertex.fail_deploy(reason)
    _, status, _ = push(target, release(2), "canary:10")
    assert status.state == "failed"
    assert reason in status.reason
    assert f"{V1} keeps serving (100% of traffic)" in status.reason
    assert "operation" in status.details
    assert vertex.traffic() == {V1: 100}
    assert target.invoke(b"[[1, 2, 3, 4]]", "application/json").status == 200
    # Pushing again after fixing things reuses the uploaded model.
    uploads = len(vertex.requests("UploadModel"))
    _, status, notes = push(target, release(2))
    assert status.healthy and len(vertex.requests("UploadModel")) == uploads
    assert any("reusing model" in n for n in notes)


def test_a_deploy_that_outlasts_the_timeout_is_cancelled(vertex, adc) -> None:
    target = provider(vertex.address)
    push(target, release(1))
    deploying = vertex.hold("DeployModel")  # the operation runs until the test lets it end
    _, status, notes = push(target, release(2), "canary:10", timeout=0.3)
    assert status.state == "failed" and status.version == V1
    assert re.match(r"timed out after \S+ waiting for Vertex AI to deploy", status.reason)
    assert waited_seconds(status.reason) >= 0.3
    assert "was cancelled" in status.reason
    assert f"{V1} keeps serving (100% of traffic)" in status.reason
    assert any("cancelling the DeployModel operation" in n for n in notes)
    (cancel,) = vertex.requests("CancelOperation")
    assert cancel.name == vertex.requests("GetOperation")[-1].name
    deploying.set()  # the cancelled operation never deploys
    assert vertex.get_operation(_named(cancel.name)).error.code == 1  # CANCELLED
    assert vertex.traffic() == {V1: 100}
    assert set(deployed_ids(vertex).values()) == {V1}
    # Pushing again deploys it normally.
    _, status, _ = push(target, release(2))
    assert status.healthy and set(deployed_ids(vertex).values()) == {V2}


def test_a_deploy_that_finishes_despite_the_cancel_is_undone(vertex, adc) -> None:
    target = provider(vertex.address)
    push(target, release(1))
    vertex.cancellable = False  # Vertex's cancel is best effort
    vertex.delays["DeployModel"] = 1.0
    _, status, _ = push(target, release(2), "canary:10", timeout=0.3)
    assert status.state == "failed" and status.version == V1
    assert "finished before it could be cancelled" in status.reason
    assert "rolled back automatically" in status.reason
    assert vertex.traffic() == {V1: 100}
    assert set(deployed_ids(vertex).values()) == {V1}


def test_a_first_deploy_that_outlasts_the_timeout_is_left_running(vertex, adc) -> None:
    target = provider(vertex.address)
    deploying = vertex.hold("DeployModel")
    _, status, _ = push(target, release(1), timeout=0.3)
    assert status.state == "updating" and "still running" in status.reason
    assert vertex.requests("CancelOperation") == []
    deploying.set()
    eventually(lambda: vertex.traffic() == {V1: 100}, "the DeployModel operation")


def _named(name: str) -> Any:
    from google.longrunning import operations_pb2

    return operations_pb2.GetOperationRequest(name=name)


def test_a_timeout_during_a_rollout_returns_the_traffic_and_says_so(vertex, adc, bakes) -> None:
    target = provider(vertex.address)
    push(target, release(1))
    _, status, _ = push(target, release(2), "canary:10", bake=3600.0, timeout=30.0)
    # the bake was cut to what was left of the 30 s, then the wait gave up
    ((baked, split, _),) = bakes.sleeps
    assert 0 < baked < 30 and split == {V1: 90, V2: 10}
    # the rollout is stopped on Vertex, not left at 10% on the new model
    assert status.state == "failed" and status.version == V1
    assert "timed out after" in status.reason and "while baking step 1/2" in status.reason
    assert f"{V1} 90%" in status.reason and f"{V2} 10%" in status.reason
    assert "the rollout was stopped" in status.reason
    assert f"{V1} serves 100% of traffic again and {V2} was undeployed" in status.reason
    assert vertex.traffic() == {V1: 100}
    assert set(deployed_ids(vertex).values()) == {V1}
    assert target.status().healthy and target.status().version == V1


def test_a_missed_canary_is_probed_until_it_answers(vertex, adc) -> None:
    """Vertex picks a deployed model at random per request: ten probes can all miss a
    10% canary. A broken canary must be found however unlucky the draws are."""
    target = provider(vertex.address)
    push(target, release(1))
    old = id_of(vertex, V1)
    vertex.chooser = unlucky(old, misses=25)
    vertex.broken.add(V2)
    _, status, _ = push(target, release(2), "canary:10")
    assert status.state == "failed" and status.version == V1
    assert "model crashed" in status.reason and "rolled back automatically" in status.reason
    assert len(vertex.requests("Predict")) >= 26
    assert vertex.traffic() == {V1: 100}


def test_a_canary_that_never_answers_is_not_promoted(vertex, adc) -> None:
    target = provider(vertex.address)
    push(target, release(1))
    old = id_of(vertex, V1)
    vertex.chooser = unlucky(old, misses=10**9)
    before = len(vertex.requests("Predict"))
    _, status, _ = push(target, release(2), "canary:10")
    probes = rollout.probes_for(10)
    assert status.state == "failed" and status.version == V1
    assert f"none of {probes} predictions reached deployed model" in status.reason
    assert len(vertex.requests("Predict")) == before + probes
    assert vertex.traffic() == {V1: 100}


def test_the_probe_count_bounds_the_miss_probability() -> None:
    for share in (1, 5, 10, 25, 50, 99):
        probes = rollout.probes_for(share)
        assert (1 - share / 100) ** probes <= rollout.MISS_PROBABILITY * (1 + 1e-9)
        assert (1 - share / 100) ** (probes - 1) > rollout.MISS_PROBABILITY
    assert rollout.probes_for(100) == 1


def unlucky(old: str, misses: int) -> Callable[[dict[str, int]], str]:
    """A traffic draw that picks ``old`` for the first ``misses`` predictions."""
    calls = iter(range(10**12))

    def choose(split: dict[str, int]) -> str:
        if next(calls) < misses and old in split:
            return old
        return next(k for k in sorted(split) if k != old) if len(split) > 1 else old

    return choose


def test_rollback_redeploys_the_kept_previous_model(vertex, adc) -> None:
    target = provider(vertex.address)
    with pytest.raises(UsageError, match="no Vertex AI endpoint"):
        target.rollback(lambda _m: None)
    push(target, release(1))
    with pytest.raises(UsageError, match="no previous version"):
        target.rollback(lambda _m: None)
    push(target, release(2))
    assert set(deployed_ids(vertex).values()) == {V2}
    rolled = target.rollback(lambda _m: None)
    assert (rolled.version, rolled.previous_version, rolled.changed) == (V1, V2, True)
    assert set(deployed_ids(vertex).values()) == {V1}
    assert vertex.traffic() == {V1: 100}
    assert target.status().version == V1
    # The redeploy started with no traffic: V2 served until V1 was ready.
    assert dict(vertex.requests("DeployModel")[-1].traffic_split) == {
        id_of_request(vertex): 100,
        "0": 0,
    }
    # Rolling back again goes forward to V2 (the version before the current one).
    assert target.rollback(lambda _m: None).version == V2
    assert vertex.traffic() == {V2: 100}


def id_of_request(vertex: FakeVertex) -> str:
    split = vertex.requests("DeployModel")[-1].traffic_split
    return next(k for k in split if k != "0")


def test_older_models_are_pruned_keeping_live_and_previous(vertex, adc) -> None:
    target = provider(vertex.address)
    for n in (1, 2, 3):
        push(target, release(n))
    assert model_versions(vertex) == {V2, V3}


def test_invoke_goes_through_raw_predict(vertex, adc) -> None:
    target = provider(vertex.address)
    with pytest.raises(UsageError, match="deployer push --to gcp"):
        target.invoke(b"[[1, 2, 3, 4]]", "application/json")
    push(target, release(1))
    answer = target.invoke(b'{"instances": [[1, 2, 3, 4]]}', "application/json")
    assert (answer.status, answer.body) == (200, b'{"predictions": [0]}')
    assert answer.content_type == "application/json"
    request = vertex.requests("RawPredict")[-1]
    assert request.endpoint == vertex.endpoint().name
    assert request.http_body.data == b'{"instances": [[1, 2, 3, 4]]}'
    # A bare array of rows (the smoke test's and the router's body) becomes instances.
    bare = target.invoke(b"[[1, 2, 3, 4], [5, 6, 7, 8]]", "application/json")
    assert (bare.status, bare.body) == (200, b'{"predictions": [0, 0]}')
    assert vertex.requests("RawPredict")[-1].http_body.data == (
        b'{"instances":[[1, 2, 3, 4], [5, 6, 7, 8]]}'
    )
    bad = target.invoke(b"not json", "application/json")
    assert bad.status == 400 and b"malformed JSON" in bad.body
    wrong = target.invoke(b'{"rows": []}', "application/json")
    assert wrong.status == 400 and b"instances" in wrong.body


def test_route_names_the_raw_predict_url(vertex, adc) -> None:
    target = provider(vertex.address)
    with pytest.raises(UsageError):
        target.route()
    push(target, release(1))
    backend = target.route()
    endpoint = vertex.endpoint().name
    assert backend.url == f"https://{vertex.address}/v1/{endpoint}:rawPredict"
    assert (backend.auth, backend.region, backend.provider) == (
        "google-oauth",
        "us-central1",
        "vertex",
    )
    default = provider(vertex.address, api_endpoint=None)
    assert default.api.host == "us-central1-aiplatform.googleapis.com"


def test_destroy_removes_exactly_this_targets_resources(vertex, adc) -> None:
    target = provider(vertex.address)
    other = provider(vertex.address, target="staging")
    push(target, release(1))
    # a broken canary whose automatic rollback fails: two deployed models
    vertex.broken.add(V2)
    vertex.fail("UndeployModel", grpc.StatusCode.INTERNAL, "Internal error.")
    _, status, _ = push(target, release(2), "canary:50")
    assert "automatic rollback" in status.reason and "failed" in status.reason
    assert set(deployed_ids(vertex).values()) == {V1, V2}
    push(other, release(1))
    removed = target.destroy(lambda _m: None)
    assert [r.split()[0] for r in removed] == ["deployed", "deployed", "endpoint", "model", "model"]
    assert vertex.endpoint().labels["deployer-target"] == "staging"
    assert {m.labels["deployer-target"] for m in vertex.models.values()} == {"staging"}
    assert target.destroy(lambda _m: None) == []
    assert target.status().state == "absent"
    assert other.status().healthy
