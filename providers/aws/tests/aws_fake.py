"""A fake AWS at the wire for the SageMaker provider's tests: moto's server plus what it lacks.

- moto 5.x's ``ThreadedMotoServer`` on 127.0.0.1 serves SageMaker, ECR,
  application-autoscaling and the SageMaker runtime; the real boto3 talks to it through
  ``endpoint_url``.
- moto 5.2 has no ``UpdateEndpoint``: we add it to its SageMaker backend and response
  class, record each request's DeploymentConfig, and let tests script how an update (or a
  create) goes: a list of states DescribeEndpoint reports, then InService on the new
  config, a failure that leaves the old config serving with a FailureReason, or a state
  such as ``Failed`` / ``UpdateRollbackFailed``.
- ``AddTags`` overwrites existing keys, as AWS does (moto appends duplicates).
- ECR hands back the local ``registry`` fixture's host (repositoryUri, proxyEndpoint)
  and credentials (the authorization token), so the real docker push goes to 127.0.0.1.
- A WSGI layer in front of moto records every request, injects errors (throttling,
  5xx, AccessDenied) for chosen operations, and answers ``InvokeEndpoint`` either from
  canned answers or by forwarding to a real container of the endpoint's image (pulled
  from the local registry and run on 127.0.0.1), turning a container 4xx/5xx into
  SageMaker's ``ModelError`` (424).
- CloudWatch (moto's, on the same server; botocore speaks its JSON protocol): each
  request is recorded and checked against botocore's model like the others;
  ``GetMetricData`` answers percentile statistics (``p99``), which moto lacks; an update
  whose ``AutoRollbackConfiguration`` names an alarm in ALARM while it bakes rolls back
  with a FailureReason naming the alarm. A test sets the alarm with ``SetAlarmState``, or
  puts the canary's data with ``PutMetricData`` and the fake evaluates the alarm as
  CloudWatch would (``aws_alarms.py``).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx
from aws_alarms import evaluate
from aws_batch_fake import Transform, transform_problems
from aws_batch_fake import install as install_transforms
from aws_capture_fake import capture_problems, write_capture
from aws_model import problems, traffic_problems
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerExecution"
TARGET_PREFIXES = {
    "SageMaker": "sagemaker",
    "AmazonEC2ContainerRegistry_V20150921": "ecr",
    "AnyScaleFrontendService": "application-autoscaling",
    "GraniteServiceVersion20100801": "cloudwatch",
    "Logs_20140328": "logs",
}
INVOKE_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
PERCENTILE = re.compile(r"^p(\d{1,2}(\.\d+)?)$")
BUSY = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
SERVING = ("InService", "Updating", "SystemUpdating", "RollingBack")  # the old fleet answers


@dataclass
class Request:
    """One request the fake received: service, operation and JSON body."""

    service: str
    operation: str
    body: dict[str, Any]


@dataclass
class Fault:
    operation: str
    code: str
    status: int
    times: int
    message: str


@dataclass
class Script:
    """How the next create or update goes: states DescribeEndpoint reports, then the outcome.

    outcome: "InService" (the new config serves), "rollback" (InService on the old
    config with ``reason``), or an endpoint status such as "Failed", "UpdateRollbackFailed"
    (reported with ``reason``), or None (stay in the last state forever).
    """

    states: list[str] = field(default_factory=lambda: ["Updating"])
    outcome: str | None = "InService"
    reason: str = ""


@dataclass
class Pending:
    config: str
    variants: list[dict[str, Any]]
    script: Script
    started: float = 0.0  # time.monotonic() of the request
    limit: float | None = None  # MaximumExecutionTimeoutInSeconds, simulated seconds
    alarms: list[str] = field(default_factory=list)  # AutoRollbackConfiguration's
    # when the update began (whole seconds, as CloudWatch keeps timestamps)
    began: datetime = field(
        default_factory=lambda: datetime.now(timezone.utc).replace(microsecond=0)
    )


class FakeAws:
    """moto's server with the additions described in the module docstring."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.create_scripts: list[Script] = []
        self.update_scripts: list[Script] = []
        self.pending: dict[str, Pending] = {}
        self.model_answers: list[tuple[int, bytes, str]] = []
        self.registry: Any = None  # the LocalRegistry fixture, when ECR must point there
        self.docker: Any = None  # a docker client: InvokeEndpoint forwards to containers
        self.containers: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._server = _Server(self)
        self._undo: list[tuple[Any, str, Any]] = []
        # simulated cloud seconds per real second: SageMaker rolls an update back once its
        # MaximumExecutionTimeoutInSeconds passes (0: the clock never reaches it)
        self.speed = 0.0
        self.rejected: list[tuple[str, list[str]]] = []
        self.extra_latency_us = 0.0  # added to each invocation's ModelLatency (a slow model)
        self.captures: list[str] = []  # S3 keys of the capture files written
        self.capture_errors: list[str] = []  # captures SageMaker would drop (no bucket)
        self.transforms: dict[str, Transform] = {}  # Batch Transform jobs (aws_batch_fake.py)
        self.hold_transforms = threading.Event()  # cleared: jobs wait before running
        self.hold_transforms.set()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeAws:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._patch_moto()
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()
        for owner, name, old in reversed(self._undo):
            setattr(owner, name, old)
        self.remove_containers()

    def remove_containers(self) -> None:
        """Stop and remove the containers that answered InvokeEndpoint."""
        with self._lock:
            for running in self.containers.values():
                running.remove()
            self.containers.clear()

    def reset(self) -> None:
        httpx.post(f"{self.url}/moto-api/reset")
        with self._lock:
            self.requests.clear()
            self.faults.clear()
            self.create_scripts.clear()
            self.update_scripts.clear()
            self.pending.clear()
            self.model_answers.clear()
            self.rejected.clear()
            self.captures.clear()
            self.capture_errors.clear()
            self.transforms.clear()
        self.hold_transforms.set()
        self.speed = 0.0
        self.extra_latency_us = 0.0

    def options(self, **extra: Any) -> dict[str, Any]:
        """Target options pointing every AWS API at this fake."""
        apis = ("sagemaker", "runtime", "ecr", "autoscaling", "cloudwatch", "s3", "logs")
        urls = {k: self.url for k in apis}
        return {
            "provider": "sagemaker",
            "region": REGION,
            "role_arn": ROLE,
            "poll_interval": 0.05,
            "endpoint_urls": urls,
            **extra,
        }

    # -- what tests use ----------------------------------------------------------------

    def calls(self, operation: str) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.operation == operation]

    def fail(
        self, operation: str, code: str, status: int = 400, times: int = 1, message: str = ""
    ) -> None:
        """The next ``times`` calls of ``operation`` answer with error ``code``."""
        self.faults.append(Fault(operation, code, status, times, message or f"injected {code}"))

    def script_create(self, script: Script) -> None:
        self.create_scripts.append(script)

    def script_update(self, script: Script) -> None:
        self.update_scripts.append(script)

    @property
    def sagemaker(self) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[ACCOUNT][REGION]

    def endpoint(self, name: str) -> Any:
        return self.sagemaker.endpoints[name]

    def check(self, service: str, operation: str, body: dict[str, Any]) -> list[str]:
        """What the real service would refuse: botocore's model, then documented limits."""
        found = problems(service, operation, body)
        if operation == "UpdateEndpoint" and not found:
            routing = ((body.get("DeploymentConfig") or {}).get("BlueGreenUpdatePolicy") or {}).get(
                "TrafficRoutingConfiguration"
            ) or {}
            found = traffic_problems(routing, self._fleet(body))
        if operation == "CreateEndpointConfig" and not found:
            found = capture_problems(body)
        if operation == "CreateTransformJob" and not found:
            found = transform_problems(self, body)
        return found

    def _fleet(self, body: dict[str, Any]) -> int | None:
        """The new fleet's instance count an UpdateEndpoint shifts traffic to."""
        endpoint = self.sagemaker.endpoints.get(body.get("EndpointName"))
        config = self.sagemaker.endpoint_configs.get(body.get("EndpointConfigName"))
        if config is None:
            return None
        variant = config.production_variants[0]
        if variant.get("ServerlessConfig"):
            return None
        if body.get("RetainAllVariantProperties") and endpoint is not None:
            current = endpoint.production_variants[0].get("CurrentInstanceCount")
            if current:
                return int(current)
        return int(variant.get("InitialInstanceCount") or 1)

    # -- moto patches ------------------------------------------------------------------

    def _set(self, owner: Any, name: str, value: Any) -> None:
        self._undo.append((owner, name, getattr(owner, name, None)))
        setattr(owner, name, value)

    def _patch_moto(self) -> None:
        from moto.core.responses import ActionResult
        from moto.ecr.models import Repository
        from moto.ecr.responses import ECRResponse
        from moto.sagemaker.exceptions import ValidationError
        from moto.sagemaker.models import FakeEndpoint, SageMakerModelBackend
        from moto.sagemaker.responses import SageMakerResponse

        fake = self

        def update_endpoint(
            backend: Any, name: str, config_name: str, deployment: Any, retain: bool = False
        ) -> Any:
            endpoint = backend.endpoints.get(name)
            if endpoint is None:
                arn = FakeEndpoint.arn_formatter(name, backend.account_id, backend.region_name)
                raise ValidationError(message=f"Could not find endpoint '{arn}'.")
            config = backend.describe_endpoint_config(config_name)
            if endpoint.endpoint_status in (*BUSY, "Failed"):
                raise ValidationError(
                    message=f"Cannot update in-progress endpoint '{endpoint.arn}'."
                    if endpoint.endpoint_status != "Failed"
                    else f"Cannot update failed endpoint '{endpoint.arn}'."
                )
            script = fake.update_scripts.pop(0) if fake.update_scripts else Script()
            variants = endpoint._process_production_variants(config["ProductionVariants"])
            if retain:  # the new fleet keeps the size autoscaling gave the old one
                for new, old in zip(variants, endpoint.production_variants, strict=False):
                    if "CurrentInstanceCount" in old and "CurrentInstanceCount" in new:
                        new["CurrentInstanceCount"] = old["CurrentInstanceCount"]
            policy = (deployment or {}).get("BlueGreenUpdatePolicy") or {}
            limit = policy.get("MaximumExecutionTimeoutInSeconds")
            watched = ((deployment or {}).get("AutoRollbackConfiguration") or {}).get("Alarms")
            alarms = [a["AlarmName"] for a in watched or []]
            fake.pending[name] = Pending(
                config_name, variants, script, time.monotonic(), limit, alarms
            )
            endpoint.failure_reason = None
            endpoint.last_deployment_config = deployment
            endpoint.endpoint_status = "Updating"
            endpoint.pending_deployment_summary = {
                "EndpointConfigName": config_name,
                "StartTime": datetime.now(timezone.utc),
            }
            return endpoint

        def response_update_endpoint(response: Any) -> Any:
            endpoint = response.sagemaker_backend.update_endpoint(
                response._get_param("EndpointName"),
                response._get_param("EndpointConfigName"),
                response._get_param("DeploymentConfig"),
                bool(response._get_param("RetainAllVariantProperties")),
            )
            return ActionResult({"EndpointArn": endpoint.arn})

        original_create = SageMakerModelBackend.create_endpoint
        original_describe = SageMakerModelBackend.describe_endpoint

        def create_endpoint(backend: Any, endpoint_name: str, endpoint_config_name: str, tags: Any):
            endpoint = original_create(backend, endpoint_name, endpoint_config_name, tags)
            script = fake.create_scripts.pop(0) if fake.create_scripts else Script(["Creating"])
            variants = endpoint.production_variants
            fake.pending[endpoint_name] = Pending(endpoint_config_name, variants, script)
            endpoint.endpoint_status = "Creating"
            return endpoint

        def describe_endpoint(backend: Any, endpoint_name: str) -> Any:
            endpoint = backend.endpoints.get(endpoint_name)
            if endpoint is not None and endpoint_name in fake.pending:
                _advance(fake, endpoint)
            return original_describe(backend, endpoint_name)

        def add_tags(backend: Any, arn: str, tags: list[dict[str, str]]) -> Any:
            resource = backend._get_resource_from_arn(arn)
            keys = {t["Key"] for t in tags}
            resource.tags = [t for t in resource.tags if t["Key"] not in keys] + list(tags)
            return resource.tags

        original_repository_init = Repository.__init__

        def repository_init(repository: Any, *args: Any, **kwargs: Any) -> None:
            original_repository_init(repository, *args, **kwargs)
            if fake.registry is not None:
                repository.uri = f"{fake.registry.host}/{repository.name}"

        original_token = ECRResponse.get_authorization_token

        def get_authorization_token(response: Any) -> Any:
            if fake.registry is None:
                return original_token(response)
            registry = fake.registry
            token = base64.b64encode(f"{registry.username}:{registry.password}".encode())
            data = {
                "authorizationToken": token.decode(),
                "expiresAt": datetime(2100, 1, 1, tzinfo=timezone.utc),
                "proxyEndpoint": f"https://{registry.host}",
            }
            return ActionResult({"authorizationData": [data]})

        self._set(SageMakerModelBackend, "update_endpoint", update_endpoint)
        self._set(SageMakerResponse, "update_endpoint", response_update_endpoint)
        self._set(SageMakerModelBackend, "create_endpoint", create_endpoint)
        self._set(SageMakerModelBackend, "describe_endpoint", describe_endpoint)
        self._set(SageMakerModelBackend, "add_tags", add_tags)
        self._set(Repository, "__init__", repository_init)
        self._set(ECRResponse, "get_authorization_token", get_authorization_token)
        self._patch_cloudwatch()
        install_transforms(self)

    def _patch_cloudwatch(self) -> None:
        """Percentile statistics (``p99``) in GetMetricData, as CloudWatch computes them
        from the values put (nearest rank); moto knows only the five basic statistics."""
        from moto.cloudwatch.models import Statistics

        original = Statistics.get_statistics_for_type

        def get_statistics_for_type(stats: Any, stat: str) -> Any:
            match = PERCENTILE.match(stat)
            if match is None:
                return original(stats, stat)
            values = sorted(stats.metric_single_values_list)
            if not values:
                return None
            rank = math.ceil(float(match.group(1)) / 100 * len(values))
            return values[max(rank, 1) - 1]

        self._set(Statistics, "get_statistics_for_type", get_statistics_for_type)

    @property
    def cloudwatch(self) -> Any:
        from moto.cloudwatch.models import cloudwatch_backends

        return cloudwatch_backends[ACCOUNT][REGION]

    def alarm_fired(self, names: list[str], since: datetime) -> Any:
        """The first of ``names`` in ALARM once evaluated on the data since ``since``."""
        defined = {c["AlarmName"]: c for c in self.calls("PutMetricAlarm")}
        evaluate(self.cloudwatch, {n: defined[n] for n in names if n in defined}, since)
        alarms = self.cloudwatch.alarms
        return next(
            (alarms[n] for n in names if n in alarms and alarms[n].state_value == "ALARM"), None
        )

    # -- InvokeEndpoint ----------------------------------------------------------------

    def invoke(self, name: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict, bytes]:
        """What SageMaker's runtime answers for ``name``: the model's answer or an error.
        Each invocation is counted in CloudWatch as SageMaker counts it."""
        endpoint = self.sagemaker.endpoints.get(name)
        if endpoint is None or endpoint.endpoint_status not in SERVING:
            message = f"Endpoint {name} of account {ACCOUNT} not found."
            return _error("ValidationError", 400, message)
        started = time.monotonic()
        status, payload, kind = self._model_answer(endpoint, body, headers)
        latency_us = (time.monotonic() - started) * 1e6 + self.extra_latency_us
        self._publish(name, status, latency_us)
        if 200 <= status < 300:
            request = (headers.get("content-type", ""), body)
            self._capture(endpoint, request, (kind, payload), headers.get("inference-id"))
            return (
                status,
                {"Content-Type": kind, "x-Amzn-Invoked-Production-Variant": "AllTraffic"},
                payload,
            )
        text = payload.decode(errors="replace")
        log_stream = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/{name}"
        error = {
            "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
            "LogStreamArn": log_stream,
            "Message": f'Received server error ({status}) from primary with message "{text}".',
            "OriginalMessage": text,
            "OriginalStatusCode": status,
        }
        return 424, {"x-amzn-ErrorType": "ModelError"}, json.dumps(error).encode()

    def _model_answer(
        self, endpoint: Any, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, str]:
        """The model's status, body and content type: canned, or from its container."""
        if self.model_answers:
            return self.model_answers.pop(0)
        config = self.sagemaker.endpoint_configs[endpoint.endpoint_config_name]
        model = self.sagemaker._models[config.production_variants[0]["ModelName"]]
        url = self._container_url(model.primary_container["Image"])
        forwarded = {k: v for k, v in headers.items() if k.lower() in ("content-type", "accept")}
        answer = httpx.post(f"{url}/invocations", content=body, headers=forwarded, timeout=60)
        return answer.status_code, answer.content, answer.headers.get("content-type", "")

    @property
    def logs(self) -> Any:
        from moto.logs.models import logs_backends

        return logs_backends[ACCOUNT][REGION]

    @property
    def s3(self) -> Any:
        from moto.s3.models import s3_backends

        return s3_backends[ACCOUNT]["aws"]

    def _capture(
        self,
        endpoint: Any,
        request: tuple[str, bytes],
        answer: tuple[str, bytes],
        inference_id: str | None = None,
    ) -> None:
        """SageMaker's data capture of one invocation (aws_capture_fake.py)."""
        config = self.sagemaker.endpoint_configs[endpoint.endpoint_config_name]
        capture = config.data_capture_config or {}
        if not capture:
            return
        name = endpoint.endpoint_name
        try:
            key = write_capture(self.s3, capture, name, "AllTraffic", request, answer, inference_id)
        except Exception as exc:  # SageMaker drops it (and logs why)
            self.capture_errors.append(f"{name}: {type(exc).__name__}: {exc}")
            return
        if key is not None:
            self.captures.append(key)

    def _publish(self, name: str, status: int, latency_us: float) -> None:
        """SageMaker's per-invocation metrics in CloudWatch (AWS/SageMaker, one variant)."""
        dimensions = [
            {"Name": "EndpointName", "Value": name},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ]
        data = [
            ("Invocations", 1.0),
            ("Invocation5XXErrors", 1.0 if status >= 500 else 0.0),
            ("Invocation4XXErrors", 1.0 if 400 <= status < 500 else 0.0),
            ("ModelLatency", latency_us),
        ]
        self.cloudwatch.put_metric_data(
            "AWS/SageMaker",
            [{"MetricName": m, "Value": v, "Dimensions": dimensions} for m, v in data],
        )

    def _container_url(self, image: str) -> str:
        """Run ``image`` as SageMaker would (``serve``, port 8080), once per image."""
        from deployer.image.containers import run_container, wait_healthy

        with self._lock:
            if image not in self.containers:
                if self.docker is None:
                    raise RuntimeError("the fake has no docker client to host models")
                auth = None
                if self.registry is not None and image.startswith(self.registry.host):
                    auth = {"username": self.registry.username, "password": self.registry.password}
                repository, _, digest = image.partition("@")
                self.docker.images.pull(repository, tag=digest, auth_config=auth)
                running = run_container(self.docker, image, command=["serve"])
                wait_healthy(running, "/ping", 60)
                self.containers[image] = running
            return str(self.containers[image].url)


def _advance(fake: FakeAws, endpoint: Any) -> None:
    """One step of the endpoint's scripted create/update (called on each DescribeEndpoint)."""
    pending = fake.pending.get(endpoint.endpoint_name)
    if pending is None:
        return
    script = pending.script
    alarm = fake.alarm_fired(pending.alarms, pending.began) if script.states else None
    if alarm is not None:  # the update is still baking: SageMaker's auto-rollback
        del fake.pending[endpoint.endpoint_name]
        endpoint.pending_deployment_summary = None
        endpoint.endpoint_status = "InService"
        endpoint.failure_reason = (
            f"Rolled back to the previous endpoint configuration because CloudWatch alarm "
            f"{alarm.name} went into ALARM state during the deployment"
        )
        return
    simulated = (time.monotonic() - pending.started) * fake.speed
    if pending.limit is not None and fake.speed and simulated > pending.limit:
        del fake.pending[endpoint.endpoint_name]  # SageMaker ends the update by itself
        endpoint.pending_deployment_summary = None
        endpoint.endpoint_status = "InService"
        endpoint.failure_reason = (
            f"Deployment exceeded MaximumExecutionTimeoutInSeconds ({pending.limit:g}s); "
            "rolled back to the previous endpoint configuration"
        )
        return
    if script.states:
        endpoint.endpoint_status = script.states.pop(0)
        if endpoint.endpoint_status == "RollingBack":
            endpoint.failure_reason = script.reason or None
        return
    if script.outcome is None:
        return  # stays in its last state: a timeout
    del fake.pending[endpoint.endpoint_name]
    endpoint.pending_deployment_summary = None
    if script.outcome == "InService":
        endpoint.endpoint_status = "InService"
        endpoint.endpoint_config_name = pending.config
        endpoint.production_variants = pending.variants
    elif script.outcome == "rollback":
        endpoint.endpoint_status = "InService"
        endpoint.failure_reason = script.reason
    else:
        endpoint.endpoint_status = script.outcome
        endpoint.failure_reason = script.reason


def _error(code: str, status: int, message: str) -> tuple[int, dict, bytes]:
    headers = {"x-amzn-ErrorType": code, "Content-Type": "application/x-amz-json-1.1"}
    return status, headers, json.dumps({"__type": code, "message": message}).encode()


class _Wire:
    """WSGI layer in front of moto: record, inject faults, answer InvokeEndpoint."""

    def __init__(self, fake: FakeAws, app: Any) -> None:
        self.fake = fake
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        path = environ.get("PATH_INFO", "")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        invoke = INVOKE_PATH.match(path)
        if target:
            prefix, _, operation = target.partition(".")
            service = TARGET_PREFIXES.get(prefix, prefix)
        elif invoke:
            service, operation = "sagemaker-runtime", "InvokeEndpoint"
        else:
            return self.app(environ, start_response)
        with self.fake._lock:
            parsed: dict[str, Any] = {}
            if invoke:
                parsed = {"EndpointName": invoke.group("name"), "Body": body}
            else:
                with contextlib.suppress(ValueError):
                    parsed = json.loads(body or b"{}")
            self.fake.requests.append(Request(service, operation, parsed))
            refused = [] if invoke else self.fake.check(service, operation, parsed)
            if refused:
                self.fake.rejected.append((operation, refused))
                text = f"{operation}: " + "; ".join(refused)
                return _respond(start_response, *_error("ValidationException", 400, text))
            fault = next((f for f in self.fake.faults if f.operation == operation), None)
            if fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.fake.faults.remove(fault)
        if fault is not None:
            return _respond(start_response, *_error(fault.code, fault.status, fault.message))
        if invoke and (self.fake.docker is not None or self.fake.model_answers):
            headers = {
                "content-type": environ.get("CONTENT_TYPE", ""),
                "accept": environ.get("HTTP_ACCEPT", ""),
                "inference-id": environ.get("HTTP_X_AMZN_SAGEMAKER_INFERENCE_ID", ""),
            }
            headers = {k: v for k, v in headers.items() if v}
            return _respond(start_response, *self.fake.invoke(invoke.group("name"), body, headers))
        return self.app(environ, start_response)


def _respond(start_response: Any, status: int, headers: dict, body: bytes) -> Iterator[bytes]:
    reason = {200: "OK", 400: "Bad Request", 424: "Failed Dependency"}.get(status, "Error")
    pairs = [(k, str(v)) for k, v in headers.items()]
    pairs.append(("Content-Length", str(len(body))))
    pairs.append(("x-amzn-RequestId", "fake-request"))
    start_response(f"{status} {reason}", pairs)
    return iter([body])


class _Server(ThreadedMotoServer):
    """ThreadedMotoServer on 127.0.0.1, port 0, with the ``_Wire`` layer in front."""

    def __init__(self, fake: FakeAws) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.fake = fake

    def _server_entry(self) -> None:
        app = _Wire(self.fake, DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()
