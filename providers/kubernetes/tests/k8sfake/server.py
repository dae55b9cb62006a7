"""The fake API server over HTTP on 127.0.0.1: discovery, CRUD with every patch type,
label and field selectors, dry run, bearer-token auth with RBAC-style refusals, pod logs,
the service proxy, scripted faults (429 with Retry-After, 5xx), and a request log."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from k8sfake.controllers import PODS, SERVICES, Controllers, Failure, Runtime
from k8sfake.resources import CORE, GATEWAY, GROUPS, VERSION_INFO, Resource
from k8sfake.store import APPLY, ApiError, Store


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: bytes
    user: str

    def json(self) -> Any:
        if self.content_type == APPLY:
            return yaml.safe_load(self.body)
        return json.loads(self.body)

    @property
    def dry_run(self) -> bool:
        return self.query.get("dryRun") == "All"


@dataclass
class Fault:
    method: str
    pattern: str
    code: int
    times: int
    retry_after: int | None = None


@dataclass
class Users:
    """Bearer tokens and what each user may do (None: everything)."""

    tokens: dict[str, str] = field(default_factory=dict)  # token -> user
    allowed: dict[str, set[str] | None] = field(default_factory=dict)  # user -> verbs


_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class FakeKube:
    """A running fake API server; ``url`` goes into a kubeconfig."""

    def __init__(self, runtime: Runtime | None = None, *, tick: float = 0.02) -> None:
        from k8sfake.runtime import EchoRuntime

        self.store = Store()
        self.runtime: Runtime = runtime or EchoRuntime()
        self.controllers = Controllers(self.store, self.runtime)
        self.users = Users()
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self.resources: dict[tuple[str, str, str], Resource] = {}
        for resource in [*CORE, *GROUPS]:
            self.resources[(resource.group, resource.version, resource.plural)] = resource
        self.tick = tick
        self._stop = threading.Event()
        self._paused = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._threads = [
            threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True),
            threading.Thread(target=self._control_loop, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # -- what tests script ---------------------------------------------------------------

    def enable_gateway_api(self) -> None:
        self.resources[(GATEWAY.group, GATEWAY.version, GATEWAY.plural)] = GATEWAY

    def fail_image(
        self, pattern: str, reason: str, message: str = "", logs: list[str] | None = None
    ) -> None:
        """Pods whose image contains ``pattern`` fail with ``reason`` (see Failure)."""
        self.controllers.failures[pattern] = Failure(reason, message, logs or [])

    def fault(
        self, method: str, pattern: str, code: int, times: int = 1, retry_after: int | None = None
    ) -> None:
        """The next ``times`` requests matching ``method`` and the path regex get ``code``."""
        self.faults.append(Fault(method, pattern, code, times, retry_after))

    def add_user(self, token: str, user: str, verbs: set[str] | None = None) -> None:
        self.users.tokens[token] = user
        self.users.allowed[user] = verbs

    def add_claim(self, name: str, folder: Path) -> None:
        """A PersistentVolumeClaim whose volume is ``folder`` on this machine (Job pods)."""
        self.controllers.jobs.claims[name] = str(folder)

    def add_namespace(self, name: str) -> None:
        self.store.namespaces.add(name)

    def kubeconfig(self, path: Path, token: str = "admin-token", context: str = "fake") -> Path:
        """Write a kubeconfig for this server; its user authenticates with ``token``."""
        user: dict[str, Any] = {"token": token} if token else {}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake-user", "user": user}],
            "contexts": [{"name": context, "context": {"cluster": "fake", "user": "fake-user"}}],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def writes(self, *, dry_run: bool | None = False) -> list[Request]:
        """Requests that write (not GET), optionally only real (or only dry-run) ones."""
        return [
            r
            for r in self.requests
            if r.method != "GET"
            and "/proxy/" not in r.path
            and (dry_run is None or r.dry_run == dry_run)
        ]

    def object(self, group: str, version: str, plural: str, namespace: str, name: str) -> Any:
        resource = self.resources[(group, version, plural)]
        return self.store.get(resource, namespace, name)

    def objects(
        self, group: str, version: str, plural: str, namespace: str | None = None
    ) -> list[Any]:
        resource = self.resources[(group, version, plural)]
        return self.store.list(resource, namespace)["items"]

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Controllers stand still inside the block (no status writes race a test)."""
        with self.store.lock:
            self._paused = True
        try:
            yield
        finally:
            self._paused = False

    def settle(self, ticks: int = 3) -> None:
        for _ in range(ticks):
            self.controllers.tick()

    def close(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
        for thread in self._threads:
            thread.join(timeout=30)
        self.controllers.jobs.close()
        self.runtime.close()

    # -- internals ------------------------------------------------------------------------

    def _control_loop(self) -> None:
        while not self._stop.wait(self.tick):
            if self._paused:
                continue
            try:
                self.controllers.tick()
            except Exception as exc:  # keep the loop alive; show the bug
                print(f"k8sfake controller error: {type(exc).__name__}: {exc}")

    def _authorize(
        self,
        request: Request,
        resource: Resource | None,
        verb: str,
        name: str,
        namespace: str,
        sub: str = "",
    ) -> None:
        if not self.users.tokens:
            return
        if request.user == "":
            raise ApiError(401, "Unauthorized", "Unauthorized")
        allowed = self.users.allowed.get(request.user)
        if allowed is None or verb in allowed:
            return
        what = resource.group_resource if resource else "namespaces"
        plural = resource.plural if resource else "namespaces"
        group = resource.group if resource else ""
        subject = f'{what} "{name}"' if name else what
        scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        plural = f"{plural}/{sub}" if sub else plural
        raise ApiError(
            403,
            "Forbidden",
            f'{subject} is forbidden: User "{request.user}" cannot {verb} resource '
            f'"{plural}" in API group "{group}"{scope}',
            {"name": name, "group": group, "kind": plural},
        )

    def handle(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        self.requests.append(request)
        for fault in self.faults:
            if (
                fault.times > 0
                and fault.method == request.method
                and re.search(fault.pattern, request.path)
            ):
                fault.times -= 1
                reason = {
                    429: "TooManyRequests",
                    500: "InternalError",
                    503: "ServiceUnavailable",
                    504: "Timeout",
                }.get(fault.code, "InternalError")
                message = (
                    "Too many requests, please try again later."
                    if fault.code == 429
                    else "the server is currently unable to handle the request"
                )
                headers = (
                    {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                )
                return _status(ApiError(fault.code, reason, message), headers)
        try:
            return self._route(request)
        except ApiError as exc:
            return _status(exc)

    def _route(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        path = request.path.rstrip("/") or "/"
        if path == "/version":
            return _json(VERSION_INFO)
        if path == "/api":
            return _json(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {
                            "clientCIDR": "0.0.0.0/0",
                            "serverAddress": self.url.removeprefix("http://"),
                        }
                    ],
                }
            )
        if path == "/apis":
            return _json(self._groups())
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 2:
            if len(parts) == 2:
                return _json(self._group(parts[1]))
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return _json(self._resource_list(group, version))
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        elif rest[0] == "namespaces" and group == "":
            return self._namespaces(request, rest)
        resource = self.resources.get((group, version, rest[0]))
        if resource is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if sub == "proxy" and resource.plural == "services":
            verb = "get" if request.method == "GET" else "create"
            self._authorize(request, resource, verb, name.split(":")[0], namespace, "proxy")
            return self._proxy(request, namespace, name, "/" + "/".join(rest[3:]))
        if sub == "proxy" and resource.plural == "pods":
            # pods/proxy: GET is the verb get, as for services/proxy
            verb = "get" if request.method == "GET" else "create"
            pod_name = _pod_of(name)
            self._authorize(request, resource, verb, pod_name, namespace, "proxy")
            return self._pod_proxy(request, namespace, name, "/" + "/".join(rest[3:]))
        if sub == "log" and resource.plural == "pods":
            self._authorize(request, resource, "get", name, namespace, "log")
            return self._log(request, namespace, name)
        if sub:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        verb = _VERBS.get(request.method, "get" if name else "list")
        self._authorize(request, resource, verb, name, namespace)
        return self._crud(request, resource, namespace, name)

    def _crud(
        self, request: Request, resource: Resource, namespace: str, name: str
    ) -> tuple[int, dict[str, str], bytes]:
        store, query = self.store, request.query
        manager = query.get("fieldManager")
        if request.method == "GET" and not name:
            return _json(
                store.list(
                    resource,
                    namespace or None,
                    query.get("labelSelector"),
                    query.get("fieldSelector"),
                )
            )
        if request.method == "GET":
            return _json(store.get(resource, namespace, name))
        if request.method == "DELETE":
            return _json(store.delete(resource, namespace, name, request.dry_run))
        try:
            body = request.json()
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"the body is not valid: {exc}") from None
        if request.method == "POST":
            return _json(
                store.create(resource, namespace, body, manager or "unknown", request.dry_run), 201
            )
        if request.method == "PUT":
            return _json(
                store.replace(
                    resource, namespace, name, body, manager or "unknown", request.dry_run
                )
            )
        if request.method == "PATCH":
            force = query.get("force") == "true"
            result = store.patch(
                resource,
                namespace,
                name,
                request.content_type,
                body,
                manager,
                force,
                request.dry_run,
            )
            return _json(result)
        raise ApiError(405, "MethodNotAllowed", f"{request.method} is not supported")

    def _namespaces(self, request: Request, rest: list[str]) -> tuple[int, dict[str, str], bytes]:
        self._authorize(
            request, None, "get" if len(rest) > 1 else "list", rest[1] if len(rest) > 1 else "", ""
        )

        def item(name: str) -> dict[str, Any]:
            return {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": name,
                    "uid": f"ns-{name}",
                    "resourceVersion": "1",
                    "creationTimestamp": "2024-01-01T00:00:00Z",
                    "labels": {"kubernetes.io/metadata.name": name},
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }

        if len(rest) > 1:
            if rest[1] not in self.store.namespaces:
                raise ApiError(
                    404,
                    "NotFound",
                    f'namespaces "{rest[1]}" not found',
                    {"name": rest[1], "kind": "namespaces"},
                )
            return _json(item(rest[1]))
        return _json(
            {
                "kind": "NamespaceList",
                "apiVersion": "v1",
                "metadata": {},
                "items": [item(n) for n in sorted(self.store.namespaces)],
            }
        )

    def _proxy(
        self, request: Request, namespace: str, target: str, path: str
    ) -> tuple[int, dict[str, str], bytes]:
        name, _, port = target.partition(":")
        with self.store.lock:
            service = self.store.get(SERVICES, namespace, name)
            ports = service["spec"].get("ports", [])
            if port and not any(p.get("name") == port or str(p.get("port")) == port for p in ports):
                raise ApiError(
                    503, "ServiceUnavailable", f'no endpoints available for service "{target}"'
                )
            endpoints = self.controllers.endpoints(service)
        if not endpoints:
            raise ApiError(
                503, "ServiceUnavailable", f'no endpoints available for service "{name}"'
            )
        pod, image = endpoints[len(self.requests) % len(endpoints)]
        headers = {"content-type": request.content_type} if request.content_type else {}
        status, answer_headers, body = self.runtime.request(
            image, request.method, path, headers, request.body, pod=pod["metadata"]["name"]
        )
        keep = {
            k: v
            for k, v in answer_headers.items()
            if k.lower() in ("content-type", "x-fake-image", "allow")
        }
        return status, keep, body

    def _pod_proxy(
        self, request: Request, namespace: str, target: str, path: str
    ) -> tuple[int, dict[str, str], bytes]:
        """``/api/v1/namespaces/NS/pods/[SCHEME:]NAME[:PORT]/proxy/PATH``: straight to the
        pod's container at PORT (80 when absent), whether or not a Service selects it."""
        name = _pod_of(target)
        parts = target.split(":")
        port = parts[-1] if len(parts) > 1 and parts[-1].isdigit() else "80"
        with self.store.lock:
            pod = self.store.get(PODS, namespace, name)
            running = (pod.get("status") or {}).get("phase") == "Running"
            container = pod["spec"]["containers"][0]
            ports = {str(p.get("containerPort")) for p in container.get("ports") or []}
            ports |= {p.get("name") for p in container.get("ports") or []}
        if not running:
            raise ApiError(400, "BadRequest", f'pod "{name}" is not running (no IP to reach)')
        if port not in ports:
            raise ApiError(
                503,
                "ServiceUnavailable",
                f"error trying to reach service: dial tcp 10.0.0.1:{port}: connect: "
                "connection refused",
            )
        headers = {"content-type": request.content_type} if request.content_type else {}
        status, answer_headers, body = self.runtime.request(
            container["image"], request.method, path, headers, request.body, pod=name
        )
        keep = {k: v for k, v in answer_headers.items() if k.lower() in ("content-type", "allow")}
        return status, keep, body

    def _log(
        self, request: Request, namespace: str, name: str
    ) -> tuple[int, dict[str, str], bytes]:
        with self.store.lock:
            pod = self.store.get(PODS, namespace, name)
            lines = list(self.controllers.logs.get((namespace, name), []))
        since = request.query.get("sinceSeconds")
        if since is not None and (not since.isdigit() or int(since) < 1):
            raise ApiError(400, "BadRequest", f"sinceSeconds: must be greater than 0: {since}")
        reader = getattr(self.runtime, "logs", None)
        job_pod = "batch.kubernetes.io/controller-uid" in (pod["metadata"].get("labels") or {})
        if reader is not None and not job_pod:  # what a model server wrote (Docker: the real)
            image = pod["spec"]["containers"][0]["image"]
            lines += reader(image, name, int(since) if since else None)
        tail = request.query.get("tailLines")
        if tail:
            lines = lines[-int(tail) :]
        text = "".join(f"{line}\n" for line in lines)
        return 200, {"Content-Type": "text/plain"}, text.encode()

    def _groups(self) -> dict[str, Any]:
        groups: dict[str, list[str]] = {}
        for group, version, _plural in self.resources:
            if group:
                groups.setdefault(group, [])
                if version not in groups[group]:
                    groups[group].append(version)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [self._group_entry(g, v) for g, v in sorted(groups.items())],
        }

    @staticmethod
    def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}

    def _group(self, group: str) -> dict[str, Any]:
        versions = sorted({v for g, v, _ in self.resources if g == group})
        if not versions:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group_entry(group, versions)}

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        found = [r for (g, v, _), r in self.resources.items() if g == group and v == version]
        if not found:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": [entry for r in found for entry in r.discovery()],
        }


def _pod_of(target: str) -> str:
    """The pod's name in a proxy target ``[SCHEME:]NAME[:PORT]``."""
    parts = target.split(":")
    if len(parts) == 3 or (len(parts) == 2 and parts[0] in ("http", "https")):
        return parts[1]
    return parts[0]


def _json(body: Any, code: int = 200) -> tuple[int, dict[str, str], bytes]:
    return code, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _status(
    error: ApiError, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    code, base, body = _json(error.status(), error.code)
    return code, {**base, **(headers or {})}, body


def _handler(fake: FakeKube) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _serve(self) -> None:
            split = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(split.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
            user = fake.users.tokens.get(token, "") if token else ""
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            request = Request(self.command, split.path, query, content_type, body, user)
            try:
                code, headers, payload = fake.handle(request)
            except Exception as exc:  # a bug in the fake: answer 500 and say what
                code, headers, payload = _status(ApiError(500, "InternalError", f"fake: {exc!r}"))
            self.send_response(code)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler
