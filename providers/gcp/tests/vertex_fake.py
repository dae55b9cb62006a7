"""A small stateful fake of the Vertex AI v1 gRPC API, for the real google-cloud-aiplatform.

It serves, over TLS on 127.0.0.1, the methods deployer calls: ModelService (UploadModel,
GetModel, ListModels, DeleteModel), EndpointService (CreateEndpoint, GetEndpoint,
ListEndpoints, UpdateEndpoint, DeleteEndpoint, DeployModel, UndeployModel),
PredictionService.Predict and RawPredict, and google.longrunning.Operations.GetOperation.
Requests and responses are the SDK's own protobuf types, so the SDK's serialisation,
operation polling and error mapping all run.

Strict: each request is parsed into its Vertex v1 proto message and checked against the
documented rules (``validate``): required fields,
resource name formats, traffic split values 0-100 summing to 100 over deployed model ids
that exist, a 1.5 MB request body for online prediction on a shared public endpoint.

Like Vertex it: completes long-running operations in the background (a DeployModel only
changes the endpoint when it finishes); sets create_time, version_id and
supported_deployment_resources_types; validates traffic splits (sum to 100, key "0" =
the model being deployed, no undeploy of a model that keeps traffic); refuses to delete
an endpoint or model that is still deployed; routes each prediction to a deployed model
drawn at random by the traffic split weights (as Vertex does: a 10% canary can be missed
by many requests in a row; tests script an unlucky draw with ``chooser``); finishes every
long-running operation no sooner than ``min_operation_seconds`` (several poll intervals).

Tests script it: ``fail(method, code, message, times)`` answers errors (throttling,
permission denied), ``fail_deploy(message)`` makes the next DeployModel operation end in
an error, ``delays[method]`` slows operations down, ``hold(method)`` keeps its operations
running until the returned event is set, ``broken`` makes a version's predictions fail,
and ``requests(method)`` returns what the SDK sent.

Cloud Monitoring's ListTimeSeries is served on the same server (``monitoring``, see
monitoring_fake): every prediction routed records its response code and a latency
(``latency_ms[version]``, default ``DEFAULT_LATENCY_MS``) for its deployed model. So is
its AlertPolicyService (``alert_policies``, see alert_policies_fake).
"""

from __future__ import annotations

import datetime
import itertools
import json
import random
import re
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import logging_fake
from alert_policies_fake import FakeAlertPolicies
from bigquery_fake import FakeBigQuery
from google.api import httpbody_pb2
from google.cloud.aiplatform_v1 import types
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2
from jobs_fake import FakeJobs, JobAbort
from monitoring_fake import FakeMonitoring, MonitoringError

_FILTER = re.compile(r'^labels\.([a-z][a-z0-9_-]*)="([^"]*)"$')
DEDICATED = types.Model.DeploymentResourcesType.DEDICATED_RESOURCES
# Online prediction on a shared public endpoint: the request body limit (1.5 MB).
MAX_REQUEST_BYTES = 1_572_864
_ENDPOINT_NAME = re.compile(r"^projects/[^/]+/locations/[^/]+/endpoints/[^/]+$")
_MODEL_NAME = re.compile(r"^projects/[^/]+/locations/[^/]+/models/[^/@]+(@[^/]+)?$")
_PARENT = re.compile(r"^projects/[^/]+/locations/[^/]+$")
Chooser = Callable[[dict[str, int]], str]
DEFAULT_LATENCY_MS = 20.0  # what the fake says a prediction took, unless scripted


def random_choice(split: dict[str, int]) -> str:
    """A deployed model id drawn at random, weighted by its share (Vertex's routing)."""
    keys = sorted(split)
    return random.choices(keys, weights=[split[k] for k in keys])[0]


class DeployFailure(Exception):
    """The runtime could not start a deployed model; becomes the operation's error."""


class Runtime(Protocol):
    def start(self, deployed_model_id: str, model: Any) -> None: ...

    def predict(
        self, deployed_model_id: str, body: bytes, content_type: str
    ) -> tuple[int, bytes, str]: ...

    def stop(self, deployed_model_id: str) -> None: ...


class StubRuntime:
    """Answers like the image's Vertex route, without a container: one prediction per row."""

    def start(self, deployed_model_id: str, model: Any) -> None:
        return None

    def predict(
        self, deployed_model_id: str, body: bytes, content_type: str
    ) -> tuple[int, bytes, str]:
        try:
            data = json.loads(body)
        except ValueError:
            return 400, b'{"error": "malformed JSON"}', "application/json"
        if not isinstance(data, dict) or not isinstance(data.get("instances"), list):
            # what the image's Vertex route answers (deployer/serving/vertex.py)
            error = b'{"error": "expected {\\"instances\\": [...], \\"parameters\\": {...}}"}'
            return 400, error, "application/json"
        answer = {"predictions": [0 for _ in data["instances"]]}
        return 200, json.dumps(answer).encode(), "application/json"

    def stop(self, deployed_model_id: str) -> None:
        return None


@dataclass
class Fault:
    method: str
    code: grpc.StatusCode
    message: str
    times: int


class Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class FakeVertex:
    """The fake's state and its gRPC server (``start()`` returns ``127.0.0.1:PORT``)."""

    def __init__(self, certificate: bytes, key: bytes, runtime: Runtime | None = None) -> None:
        self.certificate = certificate
        self.key = key
        self.lock = threading.RLock()
        self.server: grpc.Server | None = None
        self.pool: futures.ThreadPoolExecutor | None = None
        self.address = ""
        self.default_runtime: Runtime = runtime or StubRuntime()
        self.monitoring = FakeMonitoring()
        self.alert_policies = FakeAlertPolicies()  # Cloud Monitoring's AlertPolicyService
        self.bigquery = FakeBigQuery()  # request-response logging's tables (logging_fake)
        self.jobs = FakeJobs(self)  # batch prediction (jobs_fake)
        self.reset()

    # -- test controls -----------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            for gate in getattr(self, "gates", {}).values():
                gate.set()  # no operation thread stays blocked after a test
            self.generation = getattr(self, "generation", 0) + 1
            self.models: dict[str, Any] = {}
            self.endpoints: dict[str, Any] = {}
            self.operations: dict[str, operations_pb2.Operation] = {}
            self.calls: list[tuple[str, Any, dict[str, str]]] = []
            self.faults: list[Fault] = []
            self.deploy_failures: list[str] = []
            self.delays: dict[str, float] = {}
            self.gates: dict[str, threading.Event] = {}
            self.broken: set[str] = set()
            self.latency_ms: dict[str, float] = {}  # version -> the latency recorded
            self.monitoring.reset()
            self.alert_policies.reset()
            self.bigquery.reset()
            self.jobs.reset()
            self.log_chance: float | None = None  # the logging sample's draw (None: random)
            self.runtime: Runtime = self.default_runtime
            self.expected_token: str | None = None
            self.chooser: Chooser = random_choice
            self.cancellable = True  # False: CancelOperation is accepted but ignored
            self._started: set[str] = set()
            self.min_operation_seconds = 0.1
            self._ids = itertools.count(1)

    def fail(self, method: str, code: grpc.StatusCode, message: str, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer ``code`` with ``message``."""
        with self.lock:
            self.faults.append(Fault(method, code, message, times))

    def fail_deploy(self, message: str) -> None:
        """The next DeployModel operation ends with this error."""
        with self.lock:
            self.deploy_failures.append(message)

    def hold(self, method: str) -> threading.Event:
        """Operations of ``method`` started from now on stay running (``done: false``) until
        the returned event is set; ``reset()`` sets it."""
        with self.lock:
            gate = self.gates[method] = threading.Event()
            return gate

    def requests(self, method: str) -> list[Any]:
        with self.lock:
            return [request for name, request, _ in self.calls if name == method]

    def metadata(self, method: str) -> list[dict[str, str]]:
        with self.lock:
            return [meta for name, _, meta in self.calls if name == method]

    def endpoint(self) -> Any:
        """The only endpoint (tests deploy one target at a time)."""
        with self.lock:
            (endpoint,) = self.endpoints.values()
            return _copy(endpoint)

    def traffic_ids(self) -> list[str]:
        """The ids of the endpoint's deployed models."""
        return [dm.id for dm in self.endpoint().deployed_models]

    def traffic(self) -> dict[str, int]:
        """The endpoint's traffic split by deployed model display name (the version)."""
        endpoint = self.endpoint()
        names = {dm.id: dm.display_name for dm in endpoint.deployed_models}
        return {names[k]: v for k, v in endpoint.traffic_split.items()}

    # -- server ------------------------------------------------------------------------

    def start(self) -> str:
        self.pool = futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="fake-vertex")
        server = grpc.server(self.pool)
        server.add_generic_rpc_handlers(tuple(self._handlers()))
        credentials = grpc.ssl_server_credentials([(self.key, self.certificate)])
        port = server.add_secure_port("127.0.0.1:0", credentials)
        server.start()
        self.bigquery.start()
        self.server = server
        self.address = f"127.0.0.1:{port}"
        return self.address

    def stop(self) -> None:
        with self.lock:
            for gate in self.gates.values():
                gate.set()
        if self.server is not None:
            self.server.stop(grace=None).wait(30)
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        self.bigquery.stop()

    def _handlers(self) -> list[grpc.GenericRpcHandler]:
        v1 = "google.cloud.aiplatform.v1"
        op = operations_pb2.Operation
        services: dict[str, dict[str, tuple[Callable[..., Any], Any, Any]]] = {
            f"{v1}.ModelService": {
                "UploadModel": (self.upload_model, types.UploadModelRequest, op),
                "GetModel": (self.get_model, types.GetModelRequest, types.Model),
                "ListModels": (self.list_models, types.ListModelsRequest, types.ListModelsResponse),
                "DeleteModel": (self.delete_model, types.DeleteModelRequest, op),
            },
            f"{v1}.EndpointService": {
                "CreateEndpoint": (self.create_endpoint, types.CreateEndpointRequest, op),
                "GetEndpoint": (self.get_endpoint, types.GetEndpointRequest, types.Endpoint),
                "ListEndpoints": (
                    self.list_endpoints,
                    types.ListEndpointsRequest,
                    types.ListEndpointsResponse,
                ),
                "UpdateEndpoint": (
                    self.update_endpoint,
                    types.UpdateEndpointRequest,
                    types.Endpoint,
                ),
                "DeleteEndpoint": (self.delete_endpoint, types.DeleteEndpointRequest, op),
                "DeployModel": (self.deploy_model, types.DeployModelRequest, op),
                "UndeployModel": (self.undeploy_model, types.UndeployModelRequest, op),
            },
            f"{v1}.PredictionService": {
                "RawPredict": (self.raw_predict, types.RawPredictRequest, httpbody_pb2.HttpBody),
                "Predict": (self.predict, types.PredictRequest, types.PredictResponse),
            },
            "google.longrunning.Operations": {
                "GetOperation": (
                    self.get_operation,
                    operations_pb2.GetOperationRequest,
                    op,
                ),
                "CancelOperation": (
                    self.cancel_operation,
                    operations_pb2.CancelOperationRequest,
                    empty_pb2.Empty,
                ),
            },
        }
        handlers = []
        for service, methods in services.items():
            table = {
                name: grpc.unary_unary_rpc_method_handler(
                    self._wrap(name, function),
                    request_deserializer=_deserializer(request_type),
                    response_serializer=_serializer(response_type),
                )
                for name, (function, request_type, response_type) in methods.items()
            }
            handlers.append(grpc.method_handlers_generic_handler(service, table))
        handlers.append(self.monitoring.handlers(self._wrap))
        handlers.append(self.alert_policies.handlers(self._wrap))
        handlers.append(self.jobs.handlers(self._wrap))
        return handlers

    def _wrap(self, method: str, function: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
            with self.lock:
                self.calls.append((method, request, metadata))
                fault = next((f for f in self.faults if f.method == method and f.times), None)
                if fault is not None:
                    fault.times -= 1
                token = self.expected_token
            if fault is not None:
                context.abort(fault.code, fault.message)
            if token is not None and metadata.get("authorization") != f"Bearer {token}":
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "Request had invalid credentials.")
            try:
                validate(method, request)
                return function(request)
            except (Abort, MonitoringError, JobAbort) as exc:
                context.abort(exc.code, exc.message)

        return handle

    # -- long-running operations -------------------------------------------------------

    def _operation(
        self, method: str, resource: str, metadata: Any, work: Callable[[], Any]
    ) -> operations_pb2.Operation:
        """Start ``work`` in the background; the operation is done when it returns."""
        name = f"{resource}/operations/{next(self._ids)}"
        operation = operations_pb2.Operation(name=name, done=False)
        operation.metadata.Pack(type(metadata).pb(metadata))
        generation = self.generation
        self.operations[name] = operation
        delay = max(self.delays.get(method, 0.0), self.min_operation_seconds)
        gate = self.gates.get(method)

        def run() -> None:
            time.sleep(delay)
            if gate is not None:
                gate.wait()
            with self.lock:
                if operation.done:  # cancelled
                    return
                self._started.add(name)  # too late to cancel from now on
            try:
                result = work() if generation == self.generation else None
            except DeployFailure as exc:
                with self.lock:
                    operation.error.code = grpc.StatusCode.FAILED_PRECONDITION.value[0]
                    operation.error.message = str(exc)
                    operation.done = True
                return
            with self.lock:
                if result is not None:
                    message = result if not hasattr(type(result), "pb") else type(result).pb(result)
                    operation.response.Pack(message)
                operation.done = True

        threading.Thread(target=run, daemon=True).start()
        copy = operations_pb2.Operation()
        copy.CopyFrom(operation)
        return copy

    def get_operation(self, request: operations_pb2.GetOperationRequest) -> Any:
        with self.lock:
            operation = self.operations.get(request.name)
            if operation is None:
                raise Abort(grpc.StatusCode.NOT_FOUND, f"Operation {request.name} not found.")
            copy = operations_pb2.Operation()
            copy.CopyFrom(operation)
            return copy

    def cancel_operation(self, request: operations_pb2.CancelOperationRequest) -> Any:
        """Best effort, like Vertex: a cancelled operation ends with CANCELLED and its work
        is not done; with ``cancellable`` False the request is accepted and ignored."""
        with self.lock:
            operation = self.operations.get(request.name)
            if operation is None:
                raise Abort(grpc.StatusCode.NOT_FOUND, f"Operation {request.name} not found.")
            if self.cancellable and not operation.done and request.name not in self._started:
                operation.error.code = grpc.StatusCode.CANCELLED.value[0]
                operation.error.message = "Operation was cancelled."
                operation.done = True
        return empty_pb2.Empty()

    @staticmethod
    def _generic() -> Any:
        return types.GenericOperationMetadata(create_time=_now(), update_time=_now())

    # -- models ------------------------------------------------------------------------

    def upload_model(self, request: Any) -> Any:
        model = request.model
        if not model.container_spec.image_uri:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "container_spec.image_uri is required")
        with self.lock:
            name = f"{request.parent}/models/{2000 + next(self._ids)}"

            def work() -> Any:
                with self.lock:
                    stored = types.Model.deserialize(types.Model.serialize(model))
                    stored.name = name
                    stored.version_id = "1"
                    stored.create_time = stored.update_time = _now()
                    stored.version_create_time = _now()
                    stored.supported_deployment_resources_types = [DEDICATED]
                    self.models[name] = stored
                return types.UploadModelResponse(model=name, model_version_id="1")

            metadata = types.UploadModelOperationMetadata(generic_metadata=self._generic())
            return self._operation("UploadModel", name, metadata, work)

    def get_model(self, request: Any) -> Any:
        with self.lock:
            return _copy(self._model(request.name.split("@")[0]))

    def _model(self, name: str) -> Any:
        model = self.models.get(name)
        if model is None:
            raise Abort(grpc.StatusCode.NOT_FOUND, f"Model {name} not found.")
        return model

    def list_models(self, request: Any) -> Any:
        labels = _parse_filter(request.filter)
        with self.lock:
            found = [
                m
                for m in self.models.values()
                if m.name.startswith(request.parent + "/")
                and all(m.labels.get(k) == v for k, v in labels.items())
            ]
            return types.ListModelsResponse(models=[_copy(m) for m in found])

    def delete_model(self, request: Any) -> Any:
        with self.lock:
            model = self._model(request.name)
            if model.deployed_models:
                raise Abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"The model {request.name} is deployed to an endpoint; undeploy it first.",
                )

            def work() -> Any:
                with self.lock:
                    self.models.pop(request.name, None)
                return empty_pb2.Empty()

            metadata = types.DeleteOperationMetadata(generic_metadata=self._generic())
            return self._operation("DeleteModel", request.name, metadata, work)

    # -- endpoints ---------------------------------------------------------------------

    def create_endpoint(self, request: Any) -> Any:
        with self.lock:
            name = f"{request.parent}/endpoints/{1000 + next(self._ids)}"

            def work() -> Any:
                with self.lock:
                    endpoint = types.Endpoint.deserialize(
                        types.Endpoint.serialize(request.endpoint)
                    )
                    endpoint.name = name
                    logging_fake.resolve(endpoint)
                    endpoint.create_time = endpoint.update_time = _now()
                    endpoint.etag = "1"
                    self.endpoints[name] = endpoint
                    return _copy(endpoint)

            metadata = types.CreateEndpointOperationMetadata(generic_metadata=self._generic())
            return self._operation("CreateEndpoint", name, metadata, work)

    def _endpoint(self, name: str) -> Any:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise Abort(grpc.StatusCode.NOT_FOUND, f"Endpoint {name} not found.")
        return endpoint

    def get_endpoint(self, request: Any) -> Any:
        with self.lock:
            return _copy(self._endpoint(request.name))

    def list_endpoints(self, request: Any) -> Any:
        labels = _parse_filter(request.filter)
        with self.lock:
            found = [
                e
                for e in self.endpoints.values()
                if e.name.startswith(request.parent + "/")
                and all(e.labels.get(k) == v for k, v in labels.items())
            ]
            return types.ListEndpointsResponse(endpoints=[_copy(e) for e in found])

    def update_endpoint(self, request: Any) -> Any:
        paths = set(request.update_mask.paths)
        unknown = paths - {"traffic_split", "labels", "display_name", "description", _LOGGING}
        if not paths or unknown:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"Unsupported update_mask {paths}.")
        with self.lock:
            endpoint = self._endpoint(request.endpoint.name)
            if "traffic_split" in paths:
                split = dict(request.endpoint.traffic_split)
                _check_split(split, {dm.id for dm in endpoint.deployed_models}, allow_new=False)
                endpoint.traffic_split.clear()
                endpoint.traffic_split.update(split)
            if "labels" in paths:
                endpoint.labels.clear()
                endpoint.labels.update(dict(request.endpoint.labels))
            if "display_name" in paths:
                endpoint.display_name = request.endpoint.display_name
            if _LOGGING in paths:
                endpoint.predict_request_response_logging_config = (
                    request.endpoint.predict_request_response_logging_config
                )
                logging_fake.resolve(endpoint)
            endpoint.update_time = _now()
            return _copy(endpoint)

    def delete_endpoint(self, request: Any) -> Any:
        with self.lock:
            endpoint = self._endpoint(request.name)
            if endpoint.deployed_models:
                raise Abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Endpoint {request.name} has deployed models; undeploy them first.",
                )

            def work() -> Any:
                with self.lock:
                    self.endpoints.pop(request.name, None)
                return empty_pb2.Empty()

            metadata = types.DeleteOperationMetadata(generic_metadata=self._generic())
            return self._operation("DeleteEndpoint", request.name, metadata, work)

    def deploy_model(self, request: Any) -> Any:
        with self.lock:
            endpoint = self._endpoint(request.endpoint)
            deployed = types.DeployedModel.deserialize(
                types.DeployedModel.serialize(request.deployed_model)
            )
            model_name = deployed.model.split("@")[0]
            if model_name not in self.models:
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"Model {deployed.model} not found.")
            resources = deployed.dedicated_resources
            if not resources.machine_spec.machine_type or resources.min_replica_count < 1:
                raise Abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "dedicated_resources.machine_spec.machine_type and min_replica_count >= 1 "
                    "are required for custom-container models.",
                )
            if resources.max_replica_count and resources.max_replica_count < (
                resources.min_replica_count
            ):
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "max_replica_count < min.")
            split = dict(request.traffic_split)
            _check_split(split, {dm.id for dm in endpoint.deployed_models}, allow_new=True)
            failure = self.deploy_failures.pop(0) if self.deploy_failures else None
            deployed.id = str(3000 + next(self._ids))
            runtime = self.runtime
            model = self.models[model_name]

            def work() -> Any:
                if failure:
                    raise DeployFailure(failure)
                runtime.start(deployed.id, model)
                with self.lock:
                    deployed.create_time = _now()
                    deployed.model_version_id = "1"
                    deployed.status = types.DeployedModel.Status(
                        available_replica_count=resources.min_replica_count,
                        last_update_time=_now(),
                    )
                    endpoint.deployed_models.append(deployed)
                    if split:
                        new_split = {(deployed.id if k == "0" else k): v for k, v in split.items()}
                        endpoint.traffic_split.clear()
                        endpoint.traffic_split.update(new_split)
                    elif len(endpoint.deployed_models) == 1:
                        endpoint.traffic_split.update({deployed.id: 100})
                    model.deployed_models.append(
                        types.DeployedModelRef(
                            endpoint=endpoint.name, deployed_model_id=deployed.id
                        )
                    )
                    return types.DeployModelResponse(deployed_model=deployed)

            metadata = types.DeployModelOperationMetadata(generic_metadata=self._generic())
            return self._operation("DeployModel", endpoint.name, metadata, work)

    def undeploy_model(self, request: Any) -> Any:
        with self.lock:
            endpoint = self._endpoint(request.endpoint)
            ids = {dm.id for dm in endpoint.deployed_models}
            if request.deployed_model_id not in ids:
                raise Abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"Deployed model {request.deployed_model_id} not found on {endpoint.name}.",
                )
            split = dict(request.traffic_split) or dict(endpoint.traffic_split)
            remaining = ids - {request.deployed_model_id}
            if remaining and split.get(request.deployed_model_id, 0) > 0:
                raise Abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Deployed model {request.deployed_model_id} has traffic; the traffic split "
                    "must unassign it before it can be undeployed.",
                )
            split.pop(request.deployed_model_id, None)
            if request.traffic_split:
                _check_split(split, remaining, allow_new=False)
            runtime = self.runtime

            def work() -> Any:
                with self.lock:
                    kept = [
                        dm for dm in endpoint.deployed_models if dm.id != request.deployed_model_id
                    ]
                    gone = [
                        dm for dm in endpoint.deployed_models if dm.id == request.deployed_model_id
                    ]
                    del endpoint.deployed_models[:]
                    endpoint.deployed_models.extend(kept)
                    endpoint.traffic_split.clear()
                    if kept:
                        endpoint.traffic_split.update(split)
                    for dm in gone:
                        model = self.models.get(dm.model.split("@")[0])
                        if model is not None:
                            refs = [
                                r for r in model.deployed_models if r.deployed_model_id != dm.id
                            ]
                            del model.deployed_models[:]
                            model.deployed_models.extend(refs)
                runtime.stop(request.deployed_model_id)
                return types.UndeployModelResponse()

            metadata = types.UndeployModelOperationMetadata(generic_metadata=self._generic())
            return self._operation("UndeployModel", endpoint.name, metadata, work)

    # -- predictions -------------------------------------------------------------------

    def raw_predict(self, request: Any) -> Any:
        chosen, broken, runtime = self._serving_model(request.endpoint)
        body = request.http_body
        if broken:
            status, data, content_type = 500, b'{"error": "model crashed"}', "application/json"
        else:
            status, data, content_type = runtime.predict(chosen.id, body.data, body.content_type)
        self._served(request.endpoint, chosen, status)
        if status == 200:
            self._log(request.endpoint, chosen.id, body.data, data)
        if status != 200:
            raise Abort(_GRPC_FOR_HTTP.get(status, grpc.StatusCode.INTERNAL), data.decode())
        return httpbody_pb2.HttpBody(content_type=content_type, data=data)

    def predict(self, request: Any) -> Any:
        """Predict: the container gets ``{"instances": [...]}``; the answer names the
        deployed model that served it (``deployed_model_id``), as Vertex's does."""
        body = json.dumps({"instances": types.PredictRequest.to_dict(request)["instances"]})
        chosen, broken, runtime = self._serving_model(request.endpoint)
        if broken:
            status, data = 500, b'{"error": "model crashed"}'
        else:
            status, data, _ = runtime.predict(chosen.id, body.encode(), "application/json")
        self._served(request.endpoint, chosen, status)
        if status == 200:
            self._log(request.endpoint, chosen.id, body.encode(), data)
        if status != 200:
            raise Abort(_GRPC_FOR_HTTP.get(status, grpc.StatusCode.INTERNAL), data.decode())
        try:
            predictions = json.loads(data)["predictions"]
        except (ValueError, KeyError, TypeError):
            raise Abort(
                grpc.StatusCode.INTERNAL, f"Invalid prediction response {data!r}."
            ) from None
        answer = {
            "predictions": predictions,
            "deployedModelId": chosen.id,
            "model": chosen.model,
            "modelDisplayName": chosen.display_name,
        }
        return types.PredictResponse.from_json(json.dumps(answer))

    def _log(self, endpoint_name: str, deployed_model_id: str, body: bytes, data: bytes) -> None:
        """Request-response logging: a BigQuery row when the endpoint's sample draws it."""
        with self.lock:
            endpoint = _copy(self._endpoint(endpoint_name))
            chance = self.log_chance
        logging_fake.log(self.bigquery, endpoint, deployed_model_id, body, data, chance)

    def _served(self, endpoint: str, chosen: Any, status: int) -> None:
        """Record the prediction in Cloud Monitoring, as Vertex does."""
        with self.lock:
            latency = self.latency_ms.get(chosen.display_name, DEFAULT_LATENCY_MS)
        self.monitoring.record(endpoint, chosen.id, status, latency)

    def _serving_model(self, endpoint_name: str) -> tuple[Any, bool, Any]:
        """(the deployed model this prediction goes to, whether it is broken, the runtime)."""
        with self.lock:
            endpoint = self._endpoint(endpoint_name)
            chosen = self._route(endpoint)
            broken = chosen is not None and chosen.display_name in self.broken
            runtime = self.runtime
        if chosen is None:
            raise Abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Endpoint {endpoint_name} does not have any deployed model with traffic.",
            )
        return chosen, broken, runtime

    def _route(self, endpoint: Any) -> Any | None:
        """A deployed model drawn by ``chooser`` over the traffic split (random by default)."""
        split = {k: v for k, v in endpoint.traffic_split.items() if v > 0}
        if not split:
            return None
        pick = self.chooser(split)
        return next(dm for dm in endpoint.deployed_models if dm.id == pick)


_GRPC_FOR_HTTP = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
}


def _parse_filter(text: str) -> dict[str, str]:
    """``labels.k="v" AND ...``; anything else is an INVALID_ARGUMENT, like Vertex."""
    if not text:
        return {}
    labels = {}
    for clause in text.split(" AND "):
        match = _FILTER.match(clause.strip())
        if not match:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid filter: {text!r}")
        labels[match.group(1)] = match.group(2)
    return labels


def _invalid(message: str) -> Abort:
    return Abort(grpc.StatusCode.INVALID_ARGUMENT, message)


def _name(value: str, pattern: re.Pattern[str], field: str) -> None:
    if not value:
        raise _invalid(f"{field} is required.")
    if not pattern.match(value):
        raise _invalid(f"Invalid resource name {value!r} in {field}.")


def _labels(labels: Any, field: str) -> None:
    """Vertex's label rules: at most 64, keys and values of lowercase letters, digits,
    ``_`` and ``-``, at most 63 characters, keys starting with a letter."""
    items = dict(labels)
    if len(items) > 64:
        raise _invalid(f"{field}: at most 64 labels, got {len(items)}.")
    for key, value in items.items():
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", key) or not re.fullmatch(
            r"[a-z0-9_-]{0,63}", value
        ):
            raise _invalid(f"{field}: invalid label {key!r}={value!r}.")


def _display_name(value: str, field: str) -> None:
    if not value or len(value) > 128:
        raise _invalid(f"{field} is required and at most 128 characters, got {value!r}.")


def validate(method: str, request: Any) -> None:
    """Check a parsed request against the Vertex v1 API reference (raises Abort)."""
    if method in ("GetEndpoint", "DeleteEndpoint"):
        _name(request.name, _ENDPOINT_NAME, "name")
    elif method in ("GetModel", "DeleteModel"):
        _name(request.name, _MODEL_NAME, "name")
    elif method in ("ListEndpoints", "ListModels"):
        _name(request.parent, _PARENT, "parent")
    elif method == "CreateEndpoint":
        _name(request.parent, _PARENT, "parent")
        _display_name(request.endpoint.display_name, "endpoint.display_name")
        _labels(request.endpoint.labels, "endpoint.labels")
        _logging(request.endpoint, "endpoint." + _LOGGING)
    elif method == "UploadModel":
        _name(request.parent, _PARENT, "parent")
        _display_name(request.model.display_name, "model.display_name")
        _labels(request.model.labels, "model.labels")
        if not request.model.container_spec.image_uri:
            raise _invalid("model.container_spec.image_uri is required.")
    elif method == "UpdateEndpoint":
        _name(request.endpoint.name, _ENDPOINT_NAME, "endpoint.name")
        if not request.update_mask.paths:
            raise _invalid("update_mask is required.")
        if "labels" in request.update_mask.paths:
            _labels(request.endpoint.labels, "endpoint.labels")
        if _LOGGING in request.update_mask.paths:
            _logging(request.endpoint, "endpoint." + _LOGGING)
        _split_values(dict(request.endpoint.traffic_split))
    elif method == "DeployModel":
        _name(request.endpoint, _ENDPOINT_NAME, "endpoint")
        _name(request.deployed_model.model, _MODEL_NAME, "deployed_model.model")
        _split_values(dict(request.traffic_split))
    elif method == "UndeployModel":
        _name(request.endpoint, _ENDPOINT_NAME, "endpoint")
        if not request.deployed_model_id:
            raise _invalid("deployed_model_id is required.")
        _split_values(dict(request.traffic_split))
    elif method == "RawPredict":
        _name(request.endpoint, _ENDPOINT_NAME, "endpoint")
        _body_size(len(request.http_body.data))
    elif method == "Predict":
        _name(request.endpoint, _ENDPOINT_NAME, "endpoint")
        if not request.instances:
            raise _invalid("instances is required.")
        _body_size(len(types.PredictRequest.serialize(request)))


_LOGGING = "predict_request_response_logging_config"


def _logging(endpoint: Any, field: str) -> None:
    try:
        logging_fake.check(endpoint.predict_request_response_logging_config, field)
    except logging_fake.InvalidLogging as exc:
        raise _invalid(str(exc)) from None


def _body_size(size: int) -> None:
    if size > MAX_REQUEST_BYTES:
        raise _invalid(f"Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes.")


def _split_values(split: dict[str, int]) -> None:
    bad = {k: v for k, v in split.items() if not 0 <= v <= 100}
    if bad:
        raise _invalid(f"traffic_split values must be between 0 and 100, got {bad}.")


def _check_split(split: dict[str, int], ids: set[str], *, allow_new: bool) -> None:
    if not split:
        return
    known = ids | ({"0"} if allow_new else set())
    unknown = set(split) - known
    if unknown:
        raise Abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"traffic_split refers to unknown deployed models {sorted(unknown)}.",
        )
    if sum(split.values()) != 100 or any(v < 0 for v in split.values()):
        raise Abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"The traffic split must add up to 100, got {split}.",
        )


def _copy(message: Any) -> Any:
    """A snapshot of a stored resource (served outside the lock)."""
    return type(message).deserialize(type(message).serialize(message))


def _deserializer(message_type: Any) -> Callable[[bytes], Any]:
    if hasattr(message_type, "deserialize"):
        return message_type.deserialize  # type: ignore[no-any-return]
    return message_type.FromString  # type: ignore[no-any-return]


def _serializer(message_type: Any) -> Callable[[Any], bytes]:
    if hasattr(message_type, "serialize"):
        return message_type.serialize  # type: ignore[no-any-return]
    return lambda message: message.SerializeToString()
