"""Vertex's documented limits: what the provider declares, what it refuses before the
cloud does, and a fake as strict as the service (it refuses what Vertex refuses)."""

from __future__ import annotations

import itertools
import json

import grpc
import pytest
from google.api_core import exceptions as gexc
from google.protobuf import field_mask_pb2
from vertex_fake import MAX_REQUEST_BYTES, FakeVertex
from vertex_support import provider, push, release

from deployer.providers import ProjectInfo, Target
from deployer_gcp import limits
from deployer_gcp.provider import VertexProvider


def test_the_declared_limits_are_the_documented_ones() -> None:
    target = VertexProvider(
        Target("gcp", "vertex", {"project": "demo-project", "region": "europe-west4"}),
        ProjectInfo("iris"),
    )
    # shared public endpoint: 60 s inference timeout, 1.5 MB payload
    assert getattr(target, "request_timeout_seconds", None) == 60.0
    assert getattr(target, "max_request_bytes", None) == 1_572_864 == int(1.5 * 1024 * 1024)
    allowance = getattr(target, "rollout_allowance_seconds", None)
    assert isinstance(allowance, float) and allowance >= 600.0
    assert limits.MAX_REQUEST_BYTES == MAX_REQUEST_BYTES  # the fake enforces the same


def test_a_body_over_the_limit_is_refused_before_vertex(vertex: FakeVertex, adc) -> None:
    target = provider(vertex.address)
    push(target, release(1))
    sent = len(vertex.requests("RawPredict"))
    rows = json.dumps([[1.0, 2.0, 3.0, 4.0]] * 80_000).encode()
    assert len(rows) > limits.MAX_REQUEST_BYTES
    answer = target.invoke(rows, "application/json")
    assert answer.status == 413
    error = json.loads(answer.body)["error"]
    assert str(len(rows) + len(b'{"instances":}')) in error and "1572864" in error
    assert len(vertex.requests("RawPredict")) == sent  # Vertex was not asked
    # at the limit itself the body goes through
    body = b'{"instances": [[1, 2, 3, 4]], "pad": "'
    body += b"x" * (limits.MAX_REQUEST_BYTES - len(body) - 2) + b'"}'
    assert len(body) == limits.MAX_REQUEST_BYTES
    assert target.invoke(body, "application/json").status == 200


def test_the_fake_refuses_what_vertex_refuses(vertex: FakeVertex, adc) -> None:
    target = provider(vertex.address)
    push(target, release(1))
    endpoint = vertex.endpoint()
    (live,) = endpoint.deployed_models
    types, clients = target.api.types, target.api
    mask = field_mask_pb2.FieldMask(paths=["traffic_split"])

    def update(split: dict[str, int]) -> None:
        clients.endpoints.update_endpoint(
            endpoint=types.Endpoint(name=endpoint.name, traffic_split=split), update_mask=mask
        )

    with pytest.raises(gexc.InvalidArgument, match="add up to 100"):
        update({live.id: 90})
    with pytest.raises(gexc.InvalidArgument, match="unknown deployed models"):
        update({live.id: 50, "9999": 50})
    with pytest.raises(gexc.InvalidArgument, match="between 0 and 100"):
        update({live.id: 150})
    with pytest.raises(gexc.InvalidArgument, match="update_mask is required"):
        clients.endpoints.update_endpoint(
            endpoint=types.Endpoint(name=endpoint.name), update_mask=field_mask_pb2.FieldMask()
        )
    with pytest.raises(gexc.InvalidArgument, match="invalid label"):
        clients.endpoints.create_endpoint(
            parent=clients.parent, endpoint=types.Endpoint(display_name="x", labels={"A": "b"})
        )
    with pytest.raises(gexc.InvalidArgument, match="Invalid resource name"):
        clients.endpoints.get_endpoint(name="endpoints/1")
    with pytest.raises(gexc.InvalidArgument, match="payload size exceeds the limit"):
        clients.raw_predict(endpoint.name, b"[" + b" " * MAX_REQUEST_BYTES + b"]", "text/plain")
    with pytest.raises(gexc.InvalidArgument, match="instances is required"):
        clients.predict(endpoint.name, [])
    assert vertex.traffic() == {endpoint.deployed_models[0].display_name: 100}


def test_the_fake_splits_traffic_at_random_per_request(vertex: FakeVertex, adc) -> None:
    target = provider(vertex.address)
    push(target, release(1))
    # two deployed models: a broken canary whose automatic rollback fails to undeploy
    vertex.broken.add(release(2).version)
    vertex.fail("UndeployModel", grpc.StatusCode.INTERNAL, "Internal error.")
    push(target, release(2), "canary:50")
    vertex.broken.clear()
    name = vertex.endpoint().name
    target.api.set_traffic(name, dict.fromkeys(vertex.traffic_ids(), 50))
    served = [target.api.predict(name, [[0, 0, 0, 0]]).deployed_model_id for _ in range(64)]
    assert len(set(served)) == 2
    # a round robin alternates; a random draw does so with probability 2**-63
    assert not all(a != b for a, b in itertools.pairwise(served))
