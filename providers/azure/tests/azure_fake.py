"""A small stateful fake of Azure Resource Manager for Azure ML online endpoints.

It serves, over real TLS on 127.0.0.1, the management-plane routes the real azure-ai-ml
SDK calls (workspace, workspace keys, environment versions, online endpoints and
deployments, endpoint keys and tokens, deployment logs, the workspace's container
registry resource), with long-running operations polled through
``Azure-AsyncOperation``/``Location`` headers as ARM does. A second TLS server plays the
endpoints' scoring URIs: it checks the endpoint key, picks a deployment by the
endpoint's traffic (or the ``azureml-model-deployment`` header) and forwards to a
runtime: a stub answering in the image's response format, or a real container of the
image pulled from the local registry (``azure_runtime.DockerRuntime``). What the scoring
URI serves is counted (``metrics``, azure_metrics_fake.py) and answered as the endpoint's
Azure Monitor metrics at ``{endpoint id}/providers/Microsoft.Insights/metrics``; metric
alert rules (``Microsoft.Insights/metricAlerts`` in the resource group) are created,
replaced and read back (``alerts``, azure_alerts_fake.py).

Scripts for tests: deployments that fail with a message, slow or held provisioning
(``hold_provisioning()``; a deployment still provisioning refuses a DELETE with 409, as
ARM refuses a second operation on a busy resource), throttling
(429 with Retry-After) and transient 5xx, 403 AuthorizationFailed on chosen actions,
a scoring path that breaks for one deployment (or answers slowly), regenerated keys,
short-lived endpoint tokens and Microsoft Entra tokens (``entra_tokens``, minted by the
test's credential).
Strict: each endpoint or deployment PUT body is checked against the SDK's own REST models
and the documented limits (azure_rest_check.py) and refused with 400 as the service
would; the refusals are kept in ``refused`` (a metric alert's in ``alerts.refused``).
Every request is recorded, and so is the bearer secret of every scoring call
(``scoring_secrets``).
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from azure_alerts_fake import ENDPOINTS as ENDPOINT_TYPE
from azure_alerts_fake import MetricAlertService
from azure_batch_fake import BatchService
from azure_capture_fake import CaptureStore
from azure_metrics_fake import FakeMetrics, Served
from azure_rest_check import deployment_problems, endpoint_problems
from tls_support import TLSCertificate

TOKEN = "fake-arm-token"
LOCATION = "westeurope"
PROVIDER = "Microsoft.MachineLearningServices"
WS = (
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    rf"/providers/{PROVIDER}/workspaces/(?P<ws>[^/]+)"
)
RG = r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
ACR = (
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.ContainerRegistry/registries/(?P<acr>[^/]+)"
)
# Provisioning states in which a DELETE of the deployment is refused with 409 Conflict.
# Azure ML documents it for Kubernetes online endpoints ("When an operation is already in
# progress, any new operation on that same online endpoint responds with 409 conflict
# error", MicrosoftDocs/azure-ai-docs articles/machine-learning/
# how-to-troubleshoot-online-endpoints.md, "Common error codes for Kubernetes online
# endpoints"); for managed ones it documents only OperationCanceled ("canceled by another
# operation that has a higher priority"). The fake takes the harder case for both.
BUSY_STATES = ("Creating", "Updating", "Scaling")
NAME_RULE = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")


class RuntimeFailed(Exception):
    """A deployment's container did not start; ``logs`` are its last lines."""

    def __init__(self, message: str, logs: str = "") -> None:
        super().__init__(message)
        self.logs = logs


class Runtime(Protocol):
    def start(self, endpoint: str, deployment: str, image: str, config: dict[str, Any]) -> None: ...

    def invoke(
        self, endpoint: str, deployment: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, bytes]: ...

    def stop(self, endpoint: str, deployment: str) -> None: ...

    def logs(self, endpoint: str, deployment: str, lines: int) -> str: ...

    def close(self) -> None: ...


class StubRuntime:
    """Answers like the image does: ``{"predictions": [...]}``, one row per input row."""

    def __init__(self) -> None:
        self.running: set[tuple[str, str]] = set()
        self.broken: set[str] = set()  # deployment names whose scoring answers 500
        self.fail_after: dict[str, int] = {}  # deployment -> good answers before it breaks
        self.slow: dict[str, float] = {}  # deployment -> seconds each answer takes

    def start(self, endpoint: str, deployment: str, image: str, config: dict[str, Any]) -> None:
        self.running.add((endpoint, deployment))

    def invoke(
        self, endpoint: str, deployment: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, bytes]:
        if deployment in self.fail_after:
            self.fail_after[deployment] -= 1
            if self.fail_after[deployment] < 0:
                self.broken.add(deployment)
        if deployment in self.slow:
            time.sleep(self.slow[deployment])
        if deployment in self.broken:
            return 500, "application/json", b'{"error": "model crashed: ValueError: boom"}'
        try:
            data = json.loads(body)
        except ValueError:
            return 400, "application/json", b'{"error": "malformed JSON"}'
        rows = data.get("instances", data.get("inputs")) if isinstance(data, dict) else data
        if not isinstance(rows, list) or not rows:
            return 400, "application/json", b'{"error": "expected rows"}'
        rows = rows if isinstance(rows[0], list) else [rows]
        return 200, "application/json", json.dumps({"predictions": [0] * len(rows)}).encode()

    def stop(self, endpoint: str, deployment: str) -> None:
        self.running.discard((endpoint, deployment))

    def logs(self, endpoint: str, deployment: str, lines: int) -> str:
        return f"stub container {deployment}: serving on 8080\n"

    def close(self) -> None:
        self.running.clear()


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0
    at: float = field(default_factory=time.monotonic)


@dataclass
class Rule:
    """A scripted answer for requests whose method matches and whose path contains ``part``."""

    method: str
    part: str
    times: int
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class Operation:
    id: str
    status: str = "InProgress"
    error: dict[str, Any] | None = None


@dataclass
class Failure:
    message: str
    logs: str = ""
    code: str = "ResourceNotReady"


class FakeAzureML:
    """The fake cloud: state, scripts, and the two HTTPS servers (ARM and scoring)."""

    def __init__(
        self,
        certificate: TLSCertificate,
        registry: tuple[str, str, str] = ("127.0.0.1:5999", "acr-user", "acr-pass"),
        runtime: Runtime | None = None,
        subscription: str = "00000000-1111-2222-3333-444444444444",
        resource_group: str = "rg-test",
        workspace: str = "ws-test",
    ) -> None:
        self.lock = threading.RLock()
        self.subscription, self.resource_group, self.workspace = (
            subscription,
            resource_group,
            workspace,
        )
        self.registry_host, self.registry_user, self.registry_password = registry
        self.runtime: Runtime = runtime or StubRuntime()
        self.requests: list[Recorded] = []
        self.scoring_calls: list[tuple[str, str, int]] = []  # endpoint, deployment, status
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.environments: dict[tuple[str, str], dict[str, Any]] = {}
        self.operations: dict[str, Operation] = {}
        self.keys: dict[str, tuple[str, str]] = {}
        self.tokens: dict[str, dict[str, float]] = {}  # endpoint -> {token: expiry (epoch)}
        self.token_lifetime = 3600  # seconds an aml_token lives
        self.token_refresh_after: int | None = 1800  # refreshAfterTimeUtc offset; None: omit
        self.entra_tokens: dict[str, float] = {}  # Entra token -> expiry, for AADToken auth
        self.scoring_secrets: list[str] = []  # the bearer secret of each scoring call
        self.rejected: list[str] = []  # endpoints whose scoring call failed authentication
        self.failed_logs: dict[tuple[str, str], str] = {}
        self.refused: list[str] = []  # why a body was refused (azure_rest_check)
        self.metrics = FakeMetrics()  # Azure Monitor over what the scoring URI served
        # datastores, data assets, the data collector's output (azure_capture_fake.py)
        self.capture = CaptureStore(self.workspace_id)
        self.batch = BatchService(self)  # batch endpoints, jobs (azure_batch_fake.py)
        # metric alert rules in the resource group (azure_alerts_fake.py)
        self.alerts = MetricAlertService(subscription, resource_group, self._resource_type)
        # scripts
        self.rules: list[Rule] = []
        self.failures: dict[str, Failure] = {}  # deployment name ("*" = any) -> failure
        self.provisioning_seconds = 0.0
        # an endpoint create or update (a traffic change) completes after this long, a few
        # of the SDK's polls (retry_after), and only then does its traffic apply
        self.update_seconds = 0.08
        self.provisioning_gate: threading.Event | None = None
        self.retry_after = "0.02"  # seconds the SDK's LRO poller waits between polls
        self.admin_enabled = True
        self._threads: list[threading.Thread] = []
        self.arm = _serve(certificate, self._handle_arm)
        self.scoring = _serve(certificate, self._handle_scoring)

    # -- addresses -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.arm.server_address[1]}"

    @property
    def scoring_url(self) -> str:
        return f"https://127.0.0.1:{self.scoring.server_address[1]}"

    @property
    def workspace_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/{PROVIDER}/workspaces/{self.workspace}"
        )

    @property
    def registry_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            "/providers/Microsoft.ContainerRegistry/registries/fakeacr"
        )

    def close(self) -> None:
        if self.provisioning_gate is not None:
            self.provisioning_gate.set()  # let held provisioning threads end
        self.batch.close()
        for server in (self.arm, self.scoring):
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=30)
        self.runtime.close()

    # -- scripts -------------------------------------------------------------------------

    def throttle(self, method: str, part: str, times: int = 2, retry_after: str = "0.05") -> None:
        body = {"error": {"code": "TooManyRequests", "message": "Rate limit exceeded."}}
        self.rules.append(Rule(method, part, times, 429, {"Retry-After": retry_after}, body))

    def transient(self, method: str, part: str, times: int = 1, status: int = 503) -> None:
        body = {"error": {"code": "ServiceUnavailable", "message": "try again later"}}
        self.rules.append(Rule(method, part, times, status, {}, body))

    def forbid(self, method: str, part: str, action: str, scope: str | None = None) -> None:
        scope = scope or self.workspace_id
        message = (
            "The client 'ci@example.com' with object id 'aaaa-bbbb' does not have authorization "
            f"to perform action '{action}' over scope '{scope}' or the scope is invalid. If "
            "access was recently granted, please refresh your credentials."
        )
        body = {"error": {"code": "AuthorizationFailed", "message": message}}
        self.rules.append(Rule(method, part, 10_000, 403, {}, body))

    def hold_provisioning(self) -> threading.Event:
        """Deployments created from now on stay ``Creating``/``Updating`` until the returned
        event is set (``close()`` sets it)."""
        self.provisioning_gate = threading.Event()
        return self.provisioning_gate

    def fail_deployment(self, name: str, message: str, logs: str = "") -> None:
        self.failures[name] = Failure(message, logs)

    def regenerate_key(self, endpoint: str, which: str = "primary") -> str:
        """Replace one key, as ``az ml online-endpoint regenerate-keys`` does: the old one
        stops working at once. Returns the new key."""
        with self.lock:
            primary, secondary = self.keys[endpoint]
            new = secrets.token_urlsafe(24)
            self.keys[endpoint] = (new, secondary) if which == "primary" else (primary, new)
            return new

    def requests_to(self, method: str, part: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == method and part in r.path]

    def traffic_updates(self, endpoint: str) -> list[dict[str, int]]:
        """The traffic of every accepted endpoint PUT, in order."""
        return [
            dict(r.body["properties"].get("traffic") or {})
            for r in self.requests_to("PUT", f"/onlineEndpoints/{endpoint}")
            if "/deployments/" not in r.path and r.status in (200, 201)
        ]

    # -- ARM -----------------------------------------------------------------------------

    def _handle_arm(self, request: _Request) -> _Response:
        recorded = Recorded(request.method, request.path, request.query, request.json())
        with self.lock:
            self.requests.append(recorded)
        response = self._arm(request)
        recorded.status = response.status
        return response

    def _arm(self, request: _Request) -> _Response:
        with self.lock:
            for rule in self.rules:
                if rule.times > 0 and rule.method == request.method and rule.part in request.path:
                    rule.times -= 1
                    return _Response(rule.status, rule.body, rule.headers)
        if request.method == "POST" and request.path == "/oauth2/exchange":
            return self._acr_exchange(request)
        if request.method == "GET" and request.path == "/discovery":  # no auth, as Azure's
            return _Response(200, {"api": self.url, "history": self.url})
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return _error(401, "InvalidAuthenticationToken", "The access token is invalid.")
        path, method = request.path, request.method
        routes: list[tuple[str, str, Callable[..., _Response]]] = [
            ("GET", rf"{WS}", self._workspace),
            ("POST", rf"{WS}/listKeys", self._workspace_keys),
            ("PUT", rf"{WS}/environments/(?P<env>[^/]+)/versions/(?P<ver>[^/]+)", self._put_env),
            ("GET", rf"{WS}/environments/(?P<env>[^/]+)/versions/(?P<ver>[^/]+)", self._get_env),
            ("GET", rf"{WS}/onlineEndpoints", self._list_endpoints),
            ("GET", rf"{WS}/onlineEndpoints/(?P<ep>[^/]+)", self._get_endpoint),
            ("PUT", rf"{WS}/onlineEndpoints/(?P<ep>[^/]+)", self._put_endpoint),
            ("DELETE", rf"{WS}/onlineEndpoints/(?P<ep>[^/]+)", self._delete_endpoint),
            ("POST", rf"{WS}/onlineEndpoints/(?P<ep>[^/]+)/listKeys", self._endpoint_keys),
            ("POST", rf"{WS}/onlineEndpoints/(?P<ep>[^/]+)/token", self._endpoint_token),
            ("GET", rf"{WS}/onlineEndpoints/(?P<ep>[^/]+)/deployments", self._list_deployments),
            ("GET", rf"{WS}/onlineEndpoints/(?P<ep>[^/]+)/deployments/(?P<d>[^/]+)", self._get_dep),
            ("PUT", rf"{WS}/onlineEndpoints/(?P<ep>[^/]+)/deployments/(?P<d>[^/]+)", self._put_dep),
            (
                "DELETE",
                rf"{WS}/onlineEndpoints/(?P<ep>[^/]+)/deployments/(?P<d>[^/]+)",
                self._delete_dep,
            ),
            (
                "POST",
                rf"{WS}/onlineEndpoints/(?P<ep>[^/]+)/deployments/(?P<d>[^/]+)/getLogs",
                self._dep_logs,
            ),
            (
                "GET",
                rf"/?{WS}/onlineEndpoints/(?P<ep>[^/]+)/providers/Microsoft\.Insights/metrics",
                self._metrics,
            ),
            ("PUT", rf"{WS}/data/(?P<name>[^/]+)/versions/(?P<ver>[^/]+)", self._put_data),
            ("GET", rf"{WS}/data/(?P<name>[^/]+)/versions/(?P<ver>[^/]+)", self._get_data),
            ("GET", rf"{WS}/datastores", self._list_datastores),
            ("GET", rf"{WS}/datastores/(?P<name>[^/]+)", self._get_datastore),
            *self._batch_routes(),
            (
                "PUT",
                rf"{RG}/providers/Microsoft\.Insights/metricAlerts/(?P<rule>[^/]+)",
                lambda r, sub, rg, rule: _Response(
                    *self.alerts.put(sub, rg, rule, r.query, r.json())
                ),
            ),
            (
                "GET",
                rf"{RG}/providers/Microsoft\.Insights/metricAlerts/(?P<rule>[^/]+)",
                lambda r, sub, rg, rule: _Response(*self.alerts.get(sub, rg, rule, r.query)),
            ),
            ("GET", rf"{ACR}", self._registry),
            ("POST", rf"{ACR}/listCredentials", self._registry_credentials),
            ("GET", r"/operations/(?P<op>[^/]+)", self._operation),
            ("GET", r"/operationResults/(?P<op>[^/]+)", self._operation_result),
        ]
        for route_method, pattern, handler in routes:
            match = re.fullmatch(pattern, path, re.IGNORECASE)
            if match and route_method == method:
                if "ws" in match.groupdict() and match["ws"] != self.workspace:
                    return _error(
                        404, "ResourceNotFound", f"Workspace '{match['ws']}' was not found."
                    )
                with self.lock:
                    return handler(request, **match.groupdict())
        return _error(404, "NoRouteFound", f"fake ARM has no route for {method} {path}")

    def _workspace(self, request: _Request, **_: str) -> _Response:
        return _Response(
            200,
            {
                "id": self.workspace_id,
                "name": self.workspace,
                "type": f"{PROVIDER}/workspaces",
                "location": LOCATION,
                "kind": "Default",
                "tags": {},
                "identity": {"type": "SystemAssigned", "principalId": "p", "tenantId": "t"},
                "sku": {"name": "Basic", "tier": "Basic"},
                "properties": {
                    "friendlyName": self.workspace,
                    "workspaceId": "9f0c0b4e-0000-4000-8000-000000000001",
                    "containerRegistry": self.registry_id,
                    "storageAccount": f"{self.workspace_id}/storage",
                    "keyVault": f"{self.workspace_id}/vault",
                    "applicationInsights": f"{self.workspace_id}/insights",
                    "discoveryUrl": f"{self.url}/discovery",
                    "provisioningState": "Succeeded",
                    "publicNetworkAccess": "Enabled",
                },
            },
        )

    def _workspace_keys(self, request: _Request, **_: str) -> _Response:
        credentials: dict[str, Any] = {"location": LOCATION}
        if self.admin_enabled:
            credentials.update(
                username=self.registry_user,
                passwords=[
                    {"name": "password", "value": self.registry_password},
                    {"name": "password2", "value": "second-" + self.registry_password},
                ],
            )
        return _Response(
            200,
            {
                "userStorageKey": "storage-key",
                "userStorageResourceId": f"{self.workspace_id}/storage",
                "appInsightsInstrumentationKey": "ai-key",
                "containerRegistryCredentials": credentials,
                "notebookAccessKeys": {},
            },
        )

    def _registry(self, request: _Request, acr: str, **_: str) -> _Response:
        if acr != "fakeacr":
            return _error(404, "ResourceNotFound", f"registry {acr} not found")
        return _Response(
            200,
            {
                "id": self.registry_id,
                "name": acr,
                "type": "Microsoft.ContainerRegistry/registries",
                "location": LOCATION,
                "sku": {"name": "Standard", "tier": "Standard"},
                "properties": {
                    "loginServer": self.registry_host,
                    "adminUserEnabled": self.admin_enabled,
                    "provisioningState": "Succeeded",
                },
            },
        )

    def _registry_credentials(self, request: _Request, **_: str) -> _Response:
        if not self.admin_enabled:
            return _error(400, "UnauthorizedOperation", "admin user is disabled")
        return _Response(
            200,
            {
                "username": self.registry_user,
                "passwords": [{"name": "password", "value": self.registry_password}],
            },
        )

    def _acr_exchange(self, request: _Request) -> _Response:
        """ACR's AAD-token exchange (the fake plays the registry's login server here)."""
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "access_token" or form.get("access_token") != TOKEN:
            return _Response(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad token"}]})
        return _Response(200, {"refresh_token": "acr-refresh-token-for-" + form.get("service", "")})

    def _put_env(self, request: _Request, env: str, ver: str, **_: str) -> _Response:
        body = request.json() or {}
        resource = {
            "id": f"{self.workspace_id}/environments/{env}/versions/{ver}",
            "name": ver,
            "type": f"{PROVIDER}/workspaces/environments/versions",
            "properties": {**body.get("properties", {}), "provisioningState": "Succeeded"},
        }
        created = (env, ver) not in self.environments
        self.environments[(env, ver)] = resource
        return _Response(201 if created else 200, resource)

    def _get_env(self, request: _Request, env: str, ver: str, **_: str) -> _Response:
        resource = self.environments.get((env, ver))
        if resource is None:
            return _error(404, "ResourceNotFound", f"environment {env}:{ver} not found")
        return _Response(200, resource)

    # endpoints

    def _endpoint_id(self, ep: str) -> str:
        return f"{self.workspace_id}/onlineEndpoints/{ep}"

    def _resource_type(self, resource_id: str) -> str | None:
        """The type of the fake's resource ``resource_id`` (its online endpoints), or None."""
        with self.lock:
            for ep in self.endpoints:
                if self._endpoint_id(ep).lower() == resource_id.rstrip("/").lower():
                    return ENDPOINT_TYPE
        return None

    def _list_endpoints(self, request: _Request, **_: str) -> _Response:
        return _Response(200, {"value": list(self.endpoints.values())})

    def _get_endpoint(self, request: _Request, ep: str, **_: str) -> _Response:
        resource = self.endpoints.get(ep)
        if resource is None:
            return _error(404, "ResourceNotFound", f"Online endpoint '{ep}' was not found.")
        return _Response(200, resource)

    def _refuse(self, problems: list[str]) -> _Response:
        """400 as ARM answers a body its schema or limits refuse."""
        self.refused.extend(problems)
        return _error(400, "BadArgument", "; ".join(problems))

    def _put_endpoint(self, request: _Request, ep: str, **_: str) -> _Response:
        problems = endpoint_problems(request.json())
        if problems:
            return self._refuse(problems)
        body = request.json() or {}
        if not NAME_RULE.match(ep):
            return _error(400, "BadArgument", f"invalid endpoint name {ep!r}")
        properties = body.get("properties", {})
        traffic = {k: int(v) for k, v in (properties.get("traffic") or {}).items()}
        if traffic and sum(traffic.values()) != 100:
            return _error(400, "BadArgument", f"traffic must sum to 100, got {traffic}")
        for name in traffic:
            deployment = self.deployments.get((ep, name))
            if deployment is None:
                return _error(400, "BadArgument", f"deployment {name} does not exist")
            state = deployment["properties"]["provisioningState"]
            if state != "Succeeded" and traffic[name] > 0:
                return _error(400, "BadArgument", f"deployment {name} is {state}")
        existing = self.endpoints.get(ep)
        if ep not in self.keys:
            self.keys[ep] = (secrets.token_urlsafe(24), secrets.token_urlsafe(24))
        resource = {
            "id": self._endpoint_id(ep),
            "name": ep,
            "type": f"{PROVIDER}/workspaces/onlineEndpoints",
            "location": LOCATION,
            "kind": "Managed",
            "tags": body.get("tags") or {},
            "identity": body.get("identity")
            or {"type": "SystemAssigned", "principalId": "p", "tenantId": "t"},
            "properties": {
                "authMode": properties.get("authMode", "Key"),
                "description": properties.get("description"),
                "properties": properties.get("properties") or {},
                # the new split applies when the update completes, as on Azure
                "traffic": dict(existing["properties"]["traffic"]) if existing else {},
                "mirrorTraffic": properties.get("mirrorTraffic") or {},
                "scoringUri": f"{self.scoring_url}/{ep}/score",
                "swaggerUri": f"{self.scoring_url}/{ep}/swagger.json",
                "publicNetworkAccess": "Enabled",
                "provisioningState": "Creating" if existing is None else "Updating",
            },
        }
        self.endpoints[ep] = resource

        def done() -> None:
            resource["properties"]["traffic"] = traffic
            resource["properties"]["provisioningState"] = "Succeeded"

        seconds = self.update_seconds
        operation = self._start_operation(done, work=lambda: time.sleep(seconds))
        return _Response(201 if existing is None else 200, resource, self._lro_headers(operation))

    def _delete_endpoint(self, request: _Request, ep: str, **_: str) -> _Response:
        if ep not in self.endpoints:
            return _Response(204, None)
        self.endpoints[ep]["properties"]["provisioningState"] = "Deleting"

        def done() -> None:
            with self.lock:
                for key in [k for k in self.deployments if k[0] == ep]:
                    del self.deployments[key]
                    self.runtime.stop(*key)
                self.endpoints.pop(ep, None)
                self.keys.pop(ep, None)
                self.tokens.pop(ep, None)

        operation = self._start_operation(done)
        return _Response(202, None, self._lro_headers(operation, location=True))

    def _endpoint_keys(self, request: _Request, ep: str, **_: str) -> _Response:
        if ep not in self.endpoints:
            return _error(404, "ResourceNotFound", f"Online endpoint '{ep}' was not found.")
        primary, secondary = self.keys[ep]
        return _Response(200, {"primaryKey": primary, "secondaryKey": secondary})

    def _endpoint_token(self, request: _Request, ep: str, **_: str) -> _Response:
        if ep not in self.endpoints:
            return _error(404, "ResourceNotFound", f"Online endpoint '{ep}' was not found.")
        token = secrets.token_urlsafe(24)
        now = int(time.time())
        self.tokens.setdefault(ep, {})[token] = now + self.token_lifetime
        body: dict[str, Any] = {
            "accessToken": token,
            "tokenType": "Bearer",
            "expiryTimeUtc": now + self.token_lifetime,
        }
        if self.token_refresh_after is not None:
            body["refreshAfterTimeUtc"] = now + self.token_refresh_after
        return _Response(200, body)

    # deployments

    def _list_deployments(self, request: _Request, ep: str, **_: str) -> _Response:
        values = [d for (e, _n), d in self.deployments.items() if e == ep]
        return _Response(200, {"value": values})

    def _get_dep(self, request: _Request, ep: str, d: str, **_: str) -> _Response:
        resource = self.deployments.get((ep, d))
        if resource is None:
            return _error(404, "ResourceNotFound", f"Deployment '{d}' was not found.")
        return _Response(200, resource)

    def _batch_routes(self) -> list[tuple[str, str, Callable[..., _Response]]]:
        """The batch endpoints' routes (azure_batch_fake.BatchService answers them)."""
        b, ep, d = self.batch, r"(?P<ep>[^/]+)", r"(?P<d>[^/]+)"

        def answer(result: tuple[Any, ...]) -> _Response:
            return _Response(*result)

        return [
            ("PUT", rf"{WS}/batchEndpoints/{ep}", lambda r, ep, **_: answer(
                b.put_endpoint(r.json(), ep))),
            ("GET", rf"{WS}/batchEndpoints/{ep}", lambda r, ep, **_: answer(b.get_endpoint(ep))),
            ("PUT", rf"{WS}/batchEndpoints/{ep}/deployments/{d}", lambda r, ep, d, **_: answer(
                b.put_deployment(r.json(), ep, d))),
            ("GET", rf"{WS}/batchEndpoints/{ep}/deployments", lambda r, ep, **_: _Response(200, {
                "value": [v for k, v in b.deployments.items() if k[0] == ep]})),
            ("GET", rf"{WS}/batchEndpoints/{ep}/deployments/{d}", lambda r, ep, d, **_: answer(
                b.get_deployment(ep, d))),
            ("PUT", rf"{WS}/codes/(?P<n>[^/]+)/versions/(?P<v>[^/]+)", lambda r, n, v, **_: answer(
                b.put_code(r.json(), n, v))),
            ("GET", rf"{WS}/codes/(?P<n>[^/]+)/versions/(?P<v>[^/]+)", lambda r, n, v, **_: answer(
                b.get_code(n, v))),
            ("GET", rf"{WS}/computes/(?P<n>[^/]+)", lambda r, n, **_: answer(b.get_compute(n))),
            ("GET", rf"{WS}/jobs/(?P<n>[^/]+)", lambda r, n, **_: answer(b.get_job(n))),
            ("POST", rf"{WS}/jobs/(?P<n>[^/]+)/cancel", lambda r, n, **_: answer(
                b.cancel_job(n))),
            ("GET", rf"/history/v1\.0{WS}/runs/(?P<n>[^/]+)/details", lambda r, n, **_: answer(
                b.run_details(n))),
        ]  # fmt: skip

    def _put_data(self, request: _Request, name: str, ver: str, **_: str) -> _Response:
        return _Response(*self.capture.put_data(request.json(), name, ver))

    def _get_data(self, request: _Request, name: str, ver: str, **_: str) -> _Response:
        return _Response(*self.capture.get_data(name, ver))

    def _list_datastores(self, request: _Request, **_: str) -> _Response:
        return _Response(200, {"value": list(self.capture.datastores.values())})

    def _get_datastore(self, request: _Request, name: str, **_: str) -> _Response:
        return _Response(*self.capture.get_datastore(name))

    def _put_dep(self, request: _Request, ep: str, d: str, **_: str) -> _Response:
        problems = deployment_problems(request.json())
        problems += self.capture.collector_problems(request.json())
        if problems:
            return self._refuse(problems)
        body = request.json() or {}
        if ep not in self.endpoints:
            return _error(404, "ResourceNotFound", f"Online endpoint '{ep}' was not found.")
        if not NAME_RULE.match(d):
            return _error(400, "BadArgument", f"invalid deployment name {d!r}")
        existing = self.deployments.get((ep, d))
        if existing is None and sum(1 for k in self.deployments if k[0] == ep) >= 20:
            return _error(400, "BadArgument", "an endpoint has at most 20 deployments")
        properties = dict(body.get("properties", {}))
        environment = self._environment_of(properties.get("environmentId", ""))
        if environment is None:
            return _error(
                400, "BadArgument", f"unknown environment {properties.get('environmentId')}"
            )
        properties.update(
            scaleSettings={"scaleType": "Default"},
            provisioningState="Creating" if existing is None else "Updating",
            endpointComputeType="Managed",
        )
        resource = {
            "id": f"{self._endpoint_id(ep)}/deployments/{d}",
            "name": d,
            "type": f"{PROVIDER}/workspaces/onlineEndpoints/deployments",
            "location": LOCATION,
            "kind": "Managed",
            "tags": body.get("tags") or {},
            "sku": body.get("sku") or {"name": "Default", "capacity": 1},
            "properties": properties,
        }
        self.deployments[(ep, d)] = resource
        failure = self.failures.pop(d, None) or self.failures.pop("*", None)
        delay = self.provisioning_seconds
        gate = self.provisioning_gate

        def provision() -> dict[str, Any] | None:
            time.sleep(delay)
            if gate is not None:
                gate.wait()
            if failure is not None:
                self.failed_logs[(ep, d)] = failure.logs
                raise RuntimeFailed(failure.message, failure.logs)
            self.runtime.start(ep, d, environment["properties"]["image"], {
                "inference": environment["properties"].get("inferenceConfig") or {},
                "env": properties.get("environmentVariables") or {},
            })  # fmt: skip
            return None

        def done() -> None:
            resource["properties"]["provisioningState"] = "Succeeded"

        def failed() -> None:
            resource["properties"]["provisioningState"] = "Failed"

        operation = self._start_operation(done, work=provision, on_failure=failed)
        return _Response(201 if existing is None else 200, resource, self._lro_headers(operation))

    def _metrics(self, request: _Request, ep: str, **_: str) -> _Response:
        if ep not in self.endpoints:
            return _error(404, "ResourceNotFound", f"Online endpoint '{ep}' was not found.")
        status, body = self.metrics.answer(self._endpoint_id(ep), ep, request.query)
        return _Response(status, body)

    def _environment_of(self, environment_id: str) -> dict[str, Any] | None:
        match = re.search(r"/environments/([^/]+)/versions/([^/]+)$", environment_id)
        return self.environments.get((match[1], match[2])) if match else None

    def _delete_dep(self, request: _Request, ep: str, d: str, **_: str) -> _Response:
        if (ep, d) not in self.deployments:
            return _Response(204, None)
        traffic = self.endpoints.get(ep, {}).get("properties", {}).get("traffic", {})
        if traffic.get(d, 0) > 0:
            return _error(
                400, "BadArgument", f"deployment {d} receives {traffic[d]}% of the traffic"
            )
        state = self.deployments[(ep, d)]["properties"]["provisioningState"]
        if state in BUSY_STATES:
            # ARM serializes writes to one resource: while its create or update runs,
            # another operation on it is refused with 409 Conflict (see BUSY_STATES)
            return _error(
                409,
                "Conflict",
                f"Deployment '{d}' is in {state} provisioning state: another operation is "
                "in progress on it. Retry after it completes.",
            )
        self.deployments[(ep, d)]["properties"]["provisioningState"] = "Deleting"

        def done() -> None:
            with self.lock:
                self.deployments.pop((ep, d), None)
            self.runtime.stop(ep, d)

        operation = self._start_operation(done)
        return _Response(202, None, self._lro_headers(operation, location=True))

    def _dep_logs(self, request: _Request, ep: str, d: str, **_: str) -> _Response:
        if (ep, d) not in self.deployments:
            return _error(404, "ResourceNotFound", f"Deployment '{d}' was not found.")
        tail = int((request.json() or {}).get("tail") or 100)
        text = self.failed_logs.get((ep, d)) or self.runtime.logs(ep, d, tail)
        return _Response(200, {"content": text})

    # long-running operations

    def _start_operation(
        self,
        on_success: Callable[[], None],
        work: Callable[[], Any] | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> Operation:
        operation = Operation(uuid.uuid4().hex)
        self.operations[operation.id] = operation

        def run() -> None:
            try:
                if work is not None:
                    work()
            except RuntimeFailed as exc:
                with self.lock:
                    if on_failure:
                        on_failure()
                    operation.error = {"code": "ResourceNotReady", "message": str(exc)}
                    operation.status = "Failed"
                return
            with self.lock:
                on_success()
                operation.status = "Succeeded"

        if work is None:
            run()  # instant operations complete before the first poll
        else:
            thread = threading.Thread(target=run, daemon=True)
            self._threads.append(thread)
            thread.start()
        return operation

    def _lro_headers(self, operation: Operation, location: bool = False) -> dict[str, str]:
        headers = {
            "Azure-AsyncOperation": f"{self.url}/operations/{operation.id}",
            "Retry-After": "0",  # the SDK reads this one as an int; status polls then pace it
        }
        if location:
            headers["Location"] = f"{self.url}/operationResults/{operation.id}"
        return headers

    def _operation(self, request: _Request, op: str) -> _Response:
        operation = self.operations.get(op)
        if operation is None:
            return _error(404, "ResourceNotFound", f"operation {op} not found")
        body: dict[str, Any] = {"id": op, "name": op, "status": operation.status}
        if operation.error:
            body["error"] = operation.error
        headers = {"Retry-After": self.retry_after} if operation.status == "InProgress" else {}
        return _Response(200, body, headers)

    def _operation_result(self, request: _Request, op: str) -> _Response:
        operation = self.operations.get(op)
        if operation is None or operation.status == "InProgress":
            return _Response(202, None, {"Retry-After": self.retry_after})
        return _Response(204, None)

    # -- scoring -------------------------------------------------------------------------

    def _handle_scoring(self, request: _Request) -> _Response:
        batch = re.fullmatch(r"/batch/(?P<ep>[^/]+)/jobs", request.path)
        if batch and request.method == "POST":
            with self.lock:
                return _Response(*self.batch.invoke(batch["ep"], request.json(), request.headers))
        logs = re.fullmatch(r"/logs/(?P<job>[^/]+)/(?P<which>[^/]+)", request.path)
        if logs and request.method == "GET":
            text = self.batch.log_text(logs["job"], logs["which"])
            if text is None:
                return _Response(404, {"message": "no such log"})
            return _Response(200, text.encode(), {"content-type": "text/plain"})
        match = re.fullmatch(r"/(?P<ep>[^/]+)/score", request.path)
        if request.method != "POST" or not match:
            return _Response(404, {"message": "not found"})
        ep = match["ep"]
        with self.lock:
            endpoint = self.endpoints.get(ep)
            if endpoint is None:
                return _Response(404, {"message": f"endpoint {ep} not found"})
            mode = endpoint["properties"]["authMode"].lower()
            now = time.time()
            if mode == "key":
                allowed = set(self.keys.get(ep, ()))
            else:  # amltoken, aadtoken: tokens that have not expired
                issued = self.tokens.get(ep, {}) if mode == "amltoken" else self.entra_tokens
                allowed = {token for token, expiry in issued.items() if expiry > now}
            traffic = dict(endpoint["properties"]["traffic"])
            states = {
                n: d["properties"]["provisioningState"]
                for (e, n), d in self.deployments.items()
                if e == ep
            }
        auth = request.headers.get("authorization", "")
        with self.lock:
            self.scoring_secrets.append(auth.removeprefix("Bearer "))
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in allowed:
            with self.lock:
                self.rejected.append(ep)
            return _Response(401, {"message": "Key based authentication failed."})
        chosen = request.headers.get("azureml-model-deployment")
        if chosen:
            if states.get(chosen) != "Succeeded":
                return _Response(404, {"message": f"deployment {chosen} not found or not ready"})
        else:
            live = {n: w for n, w in traffic.items() if w > 0 and states.get(n) == "Succeeded"}
            if not live:
                return _Response(424, {"message": "no deployment receives traffic"})
            chosen = random.choices(list(live), weights=list(live.values()))[0]
        started = time.monotonic()
        status, content_type, body = self.runtime.invoke(
            ep, chosen, request.body, dict(request.headers)
        )
        took_ms = (time.monotonic() - started) * 1000.0
        with self.lock:
            resource = self.deployments.get((ep, chosen))
        if resource is not None and status == 200:
            request_id = request.headers.get("x-request-id") or str(uuid.uuid4())
            self.capture.write_payloads(
                resource,
                (request.body, request.headers.get("content-type", ""), request_id),
                (body, content_type),
            )
        self.metrics.record(ep, Served(self.metrics.clock(), chosen, status, took_ms))
        with self.lock:
            self.scoring_calls.append((ep, chosen, status))
        return _Response(
            status, body, {"content-type": content_type, "azureml-model-deployment": chosen}
        )


# -- a tiny threaded HTTPS server ----------------------------------------------------------


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass
class _Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def _error(status: int, code: str, message: str) -> _Response:
    return _Response(status, {"error": {"code": code, "message": message}})


class _TLSServer(ThreadingHTTPServer):
    """One thread per connection; ``server_close`` also ends the threads of keep-alive
    connections clients left open (the SDKs' connection pools), and waits for them."""

    daemon_threads = True

    def __init__(self, certificate: TLSCertificate, handler: type[BaseHTTPRequestHandler]):
        super().__init__(("127.0.0.1", 0), handler)
        self.context = certificate.server_context()
        self._guard = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self._guard:
            self._connections[request] = thread
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._guard:
                self._connections.pop(request, None)

    def server_close(self) -> None:
        super().server_close()
        with self._guard:
            connections = list(self._connections.items())
        for sock, _ in connections:
            # the plain socket's shutdown: the handler's TLS read sees the end of the stream
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        for _, thread in connections:
            thread.join(timeout=30)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        # the TLS handshake happens in the request's own thread, on first read
        return self.context.wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        ), address


def _serve(certificate: TLSCertificate, handle: Callable[[_Request], _Response]) -> _TLSServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _dispatch(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(split.query).items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                response = handle(_Request(self.command, split.path, query, headers, body))
            except Exception as exc:  # a bug in the fake: say so loudly
                response = _error(500, "FakeBug", f"{type(exc).__name__}: {exc}")
            if isinstance(response.body, bytes):
                payload = response.body
            elif response.body is None:
                payload = b""
            else:
                payload = json.dumps(response.body).encode()
            self.send_response(response.status)
            headers = {k.lower(): v for k, v in response.headers.items()}
            if payload and "content-type" not in headers:
                self.send_header("content-type", "application/json")
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.send_header("x-ms-request-id", uuid.uuid4().hex)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _dispatch

    server = _TLSServer(certificate, Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server
