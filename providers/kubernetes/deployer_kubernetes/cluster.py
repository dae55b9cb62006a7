"""One target's cluster through the official kubernetes client: kubeconfig loading, the
client's own retry configuration, server-side apply, reads, deletes, pod logs, the service
proxy, and errors a user can act on. Objects go in and come out as plain dicts (camelCase,
as ``kubectl get -o json`` shows them); the typed client still validates every response.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from deployer.providers import ConfigError, DeployerError, MissingDependencyError, UsageError
from deployer_kubernetes.names import MANAGER
from deployer_kubernetes.options import KubernetesOptions

APPLY_PATCH = "application/apply-patch+yaml"
RETRY_STATUSES = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class Kind:
    """How the typed client reaches one kind (``custom`` kinds go through CustomObjectsApi)."""

    kind: str
    api_version: str
    plural: str
    api: str
    suffix: str = ""

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def custom(self) -> bool:
        return self.api == "CustomObjectsApi"

    def describe(self, name: str = "") -> str:
        """``deployment/iris-k8s`` as kubectl names it."""
        return f"{self.kind.lower()}/{name}" if name else self.kind.lower()


KINDS = {
    k.kind: k
    for k in (
        Kind(
            "PodDisruptionBudget",
            "policy/v1",
            "poddisruptionbudgets",
            "PolicyV1Api",
            "namespaced_pod_disruption_budget",
        ),
        Kind("Service", "v1", "services", "CoreV1Api", "namespaced_service"),
        Kind("Deployment", "apps/v1", "deployments", "AppsV1Api", "namespaced_deployment"),
        Kind(
            "HorizontalPodAutoscaler",
            "autoscaling/v2",
            "horizontalpodautoscalers",
            "AutoscalingV2Api",
            "namespaced_horizontal_pod_autoscaler",
        ),
        Kind(
            "Ingress", "networking.k8s.io/v1", "ingresses", "NetworkingV1Api", "namespaced_ingress"
        ),
        Kind("HTTPRoute", "gateway.networking.k8s.io/v1", "httproutes", "CustomObjectsApi"),
        Kind("Job", "batch/v1", "jobs", "BatchV1Api", "namespaced_job"),
    )
}
# The order destroy deletes in: what routes traffic first, the workload last.
DELETE_ORDER = [
    "HTTPRoute",
    "Ingress",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Service",
    "Deployment",
]

_VERB = {"read": "get", "list": "list", "patch": "patch", "delete": "delete", "proxy": "create"}


class Cluster:
    """The API of one kubeconfig context, scoped to the target's namespace."""

    def __init__(self, options: KubernetesOptions, target: str) -> None:
        self.options = options
        self.target = target
        self.namespace = options.namespace
        self.context = options.context or "(current context)"
        self.server = "(unknown server)"
        self._api_client: Any = None
        self._apis: dict[str, Any] = {}

    # -- connection ---------------------------------------------------------------------

    @property
    def api_client(self) -> Any:
        if self._api_client is None:
            self._api_client = self._connect()
        return self._api_client

    def _connect(self) -> Any:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
        from urllib3.util.retry import Retry

        configuration = client.Configuration()
        option = self.options.kubeconfig
        env = os.environ.get("KUBECONFIG")
        files = [
            Path(p).expanduser() for p in (option or env or "~/.kube/config").split(os.pathsep) if p
        ]
        try:
            if any(f.exists() for f in files):
                kubeconfig = option and str(Path(option).expanduser())
                config.load_kube_config(
                    config_file=kubeconfig or None,
                    context=self.options.context,
                    client_configuration=configuration,
                    persist_config=False,
                )
                if not self.options.context:
                    _, current = config.list_kube_config_contexts(kubeconfig or None)
                    self.context = current.get("name", self.context)
            elif not option and os.environ.get("KUBERNETES_SERVICE_HOST"):
                config.load_incluster_config(client_configuration=configuration)
                self.context = "in-cluster service account"
            else:
                raise MissingDependencyError(
                    "no Kubernetes credentials found; tried: "
                    + "; ".join(self._chain(option, env, files)),
                    hint=f"point targets.{self.target}.kubeconfig (or $KUBECONFIG) at a "
                    "kubeconfig, e.g. from `kind get kubeconfig`, `aws eks update-kubeconfig`, "
                    "`gcloud container clusters get-credentials` or `az aks get-credentials`",
                )
        except ConfigException as exc:
            raise ConfigError(
                "deployer.yaml",
                [f"targets.{self.target}.context: {self._context_problem(exc, option)}"],
            ) from None
        configuration.retries = Retry(
            total=self.options.retries,
            connect=self.options.retries,
            read=min(self.options.retries, 2),
            status=self.options.retries,
            backoff_factor=self.options.retry_backoff,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"}),
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        self.server = configuration.host
        return client.ApiClient(configuration)

    @staticmethod
    def _chain(option: str | None, env: str | None, files: list[Path]) -> list[str]:
        tried = [
            f"the target's kubeconfig option ({option or 'unset'})",
            f"$KUBECONFIG ({env or 'unset'})",
        ]
        if not option and not env:
            tried.append(f"{files[0]} (missing)")
        else:
            tried.append(", ".join(f"{f} (missing)" for f in files))
        tried.append("the in-cluster service account (not running in a pod)")
        return tried

    def _context_problem(self, exc: Exception, kubeconfig: str | None) -> str:
        from kubernetes import config

        try:
            contexts, _ = config.list_kube_config_contexts(kubeconfig or None)
            names = ", ".join(c["name"] for c in contexts) or "none"
        except Exception:
            names = "unknown"
        return f"cannot use context {self.options.context!r}: {exc} (contexts: {names})"

    def api(self, name: str) -> Any:
        if name not in self._apis:
            from kubernetes import client

            self._apis[name] = getattr(client, name)(self.api_client)
        return self._apis[name]

    def _plain(self, obj: Any) -> Any:
        return obj if isinstance(obj, dict) else self.api_client.sanitize_for_serialization(obj)

    # -- errors -------------------------------------------------------------------------

    def _call(
        self,
        action: str,
        kind: Kind | None,
        name: str,
        fn: Any,
        *args: Any,
        missing_ok: bool = False,
        **kw: Any,
    ) -> Any:
        """Call the client; map its errors (None for a missing object when ``missing_ok``)."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError as Urllib3Error

        kw.setdefault("_request_timeout", self.options.request_timeout)
        try:
            return fn(*args, **kw)
        except ApiException as exc:
            if missing_ok and exc.status == 404 and not _namespace_missing(exc):
                return None
            raise self._api_error(exc, action, kind, name) from None
        except Urllib3Error as exc:
            raise DeployerError(
                f"cannot reach the Kubernetes API server at {self.server} "
                f"(context {self.context}): {_reason(exc)}",
                hint="check the cluster is running and the kubeconfig's server address",
            ) from None

    def _api_error(self, exc: Any, action: str, kind: Kind | None, name: str) -> DeployerError:
        status = int(exc.status or 0)
        message, reason = _status_message(exc)
        what = kind.describe(name) if kind else name
        where = f"in namespace {self.namespace} (context {self.context})"
        if status == 401:
            return MissingDependencyError(
                f"the API server at {self.server} refused the credentials of context "
                f"{self.context} (401 Unauthorized)",
                hint="refresh them (kubectl config view; your cloud's get-credentials command)",
            )
        if status == 403:
            return DeployerError(
                f"permission denied: cannot {_VERB.get(action, action)} {what} {where}: {message}",
                hint="ask a cluster admin for a Role allowing this verb on this resource",
            )
        if status == 404 and message.startswith("namespaces "):
            return UsageError(
                f"namespace {self.namespace} does not exist (context {self.context})",
                hint=f"kubectl create namespace {self.namespace}, or set "
                f"targets.{self.target}.namespace",
            )
        if status in RETRY_STATUSES:
            return DeployerError(
                f"the API server kept answering {status} {reason or ''} to {action} {what} "
                f"after {self.options.retries} retries: {message}".replace("  ", " ")
            )
        return DeployerError(f"could not {action} {what} {where}: {status} {reason}: {message}")

    # -- objects ------------------------------------------------------------------------

    def apply(
        self, manifest: dict[str, Any], *, dry_run: bool = False, manager: str = MANAGER
    ) -> dict[str, Any]:
        """Server-side apply (``force``: deployer owns these objects) and return the result."""
        kind = KINDS[manifest["kind"]]
        name = manifest["metadata"]["name"]
        common: dict[str, Any] = {
            "field_manager": manager,
            "force": True,
            "_content_type": APPLY_PATCH,
        }
        if dry_run:
            common["dry_run"] = "All"
        if kind.custom:
            api = self.api(kind.api)
            result = self._call(
                "patch",
                kind,
                name,
                api.patch_namespaced_custom_object,
                kind.group,
                kind.version,
                self.namespace,
                kind.plural,
                name,
                manifest,
                **common,
            )
        else:
            method = getattr(self.api(kind.api), f"patch_{kind.suffix}")
            result = self._call(
                "patch", kind, name, method, name, self.namespace, manifest, **common
            )
        return self._plain(result)

    def get(self, kind_name: str, name: str) -> dict[str, Any] | None:
        """The live object, or None when it does not exist."""
        kind = KINDS[kind_name]
        if kind.custom:
            api = self.api(kind.api)
            result = self._call(
                "read",
                kind,
                name,
                api.get_namespaced_custom_object,
                kind.group,
                kind.version,
                self.namespace,
                kind.plural,
                name,
                missing_ok=True,
            )
        else:
            method = getattr(self.api(kind.api), f"read_{kind.suffix}")
            result = self._call("read", kind, name, method, name, self.namespace, missing_ok=True)
        return None if result is None else self._plain(result)

    def list_objects(self, kind_name: str, selector: str) -> list[dict[str, Any]]:
        kind = KINDS[kind_name]
        if kind.custom:
            if not self.has_api(kind.api_version):
                return []
            result = self._call(
                "list",
                kind,
                "",
                self.api(kind.api).list_namespaced_custom_object,
                kind.group,
                kind.version,
                self.namespace,
                kind.plural,
                label_selector=selector,
            )
            return list(result.get("items", []))
        method = getattr(self.api(kind.api), f"list_{kind.suffix}")
        result = self._call("list", kind, "", method, self.namespace, label_selector=selector)
        return [self._plain(item) for item in result.items]

    def delete(self, kind_name: str, name: str, propagation: str = "Background") -> bool:
        """Delete one object (dependents in the background, or first: ``Foreground``);
        False if it was already gone."""
        kind = KINDS[kind_name]
        if kind.custom:
            api = self.api(kind.api)
            result = self._call(
                "delete",
                kind,
                name,
                api.delete_namespaced_custom_object,
                kind.group,
                kind.version,
                self.namespace,
                kind.plural,
                name,
                propagation_policy="Background",
                missing_ok=True,
            )
        else:
            method = getattr(self.api(kind.api), f"delete_{kind.suffix}")
            result = self._call(
                "delete",
                kind,
                name,
                method,
                name,
                self.namespace,
                propagation_policy=propagation,
                missing_ok=True,
            )
        return result is not None

    # -- pods, events, logs -------------------------------------------------------------

    def pods(self, selector: str) -> list[dict[str, Any]]:
        api = self.api("CoreV1Api")
        result = self._call(
            "list", None, "pods", api.list_namespaced_pod, self.namespace, label_selector=selector
        )
        return [self._plain(p) for p in result.items]

    def events(self, kind: str, name: str) -> list[dict[str, Any]]:
        api = self.api("CoreV1Api")
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        result = self._call(
            "list",
            None,
            "events",
            api.list_namespaced_event,
            self.namespace,
            field_selector=selector,
        )
        return [self._plain(e) for e in result.items]

    def pod_log(self, pod: str, container: str, *, previous: bool, tail: int) -> str:
        api = self.api("CoreV1Api")
        return str(
            self._call(
                "read",
                None,
                f"the log of pod/{pod}",
                api.read_namespaced_pod_log,
                pod,
                self.namespace,
                container=container,
                previous=previous,
                tail_lines=tail,
            )
        )

    def pod_log_since(self, pod: str, container: str, since_seconds: int | None) -> str:
        """The container's log, from ``since_seconds`` ago (None: all the kubelet keeps)."""
        api = self.api("CoreV1Api")
        extra: dict[str, Any] = {"since_seconds": since_seconds} if since_seconds else {}
        answer = self._call(
            "read",
            None,
            f"the log of pod/{pod}",
            api.read_namespaced_pod_log,
            pod,
            self.namespace,
            container=container,
            **extra,
        )
        return str(answer)

    # -- discovery ----------------------------------------------------------------------

    def has_api(self, group_version: str) -> bool:
        """Whether the server serves ``group/version`` (discovery)."""
        group, _, version = group_version.rpartition("/")
        if not group:
            return True
        groups = self._call("list", None, "API groups", self.api("ApisApi").get_api_versions)
        return any(
            g.name == group and any(v.version == version for v in g.versions) for g in groups.groups
        )

    def server_version(self) -> str:
        info = self._call("read", None, "the server version", self.api("VersionApi").get_code)
        return str(info.git_version)

    # -- the pod proxy ------------------------------------------------------------------

    def pod_get(self, pod: str, port: int, path: str) -> str:
        """GET ``PATH`` of one pod's container through the API server's pod proxy
        (``/api/v1/namespaces/NS/pods/NAME:PORT/proxy/PATH``; RBAC: get on pods/proxy)."""
        api = self.api("CoreV1Api")
        answer = self._call(
            "read",
            None,
            f"pods/{pod}/proxy",
            api.connect_get_namespaced_pod_proxy_with_path,
            f"{pod}:{port}",  # name
            self.namespace,
            path.lstrip("/"),
        )
        return str(answer)

    # -- the service proxy --------------------------------------------------------------

    def proxy(
        self,
        service: str,
        port: str,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
    ) -> tuple[int, dict[str, str], bytes]:
        """A request through the API server's service proxy (works from outside the cluster):
        ``/api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH``. The body goes byte for byte."""
        from urllib3.exceptions import HTTPError as Urllib3Error

        api_client = self.api_client
        resource = (
            f"/api/v1/namespaces/{quote(self.namespace)}/services/"
            f"{quote(service)}:{quote(port)}/proxy/{path.lstrip('/')}"
        )
        _, url, header_params, _, _ = api_client.param_serialize(
            method, resource, header_params=dict(headers), auth_settings=["BearerToken"]
        )
        try:
            response = api_client.rest_client.pool_manager.request(
                method,
                url,
                body=body,
                headers=header_params,
                timeout=self.options.request_timeout + 60,
                retries=False,
            )
        except Urllib3Error as exc:
            raise DeployerError(
                f"cannot reach the Kubernetes API server at {self.server} "
                f"(context {self.context}): {_reason(exc)}"
            ) from None
        answer = {k.lower(): v for k, v in response.headers.items()}
        status, data = int(response.status), bytes(response.data)
        if _is_api_status(answer, data) and status >= 400:
            message = json.loads(data).get("message", "")
            if status == 401:
                raise MissingDependencyError(
                    f"the API server at {self.server} refused the credentials of context "
                    f"{self.context} (401 Unauthorized)"
                )
            if status == 403:
                raise DeployerError(
                    f"permission denied: cannot create services/proxy for service/{service} "
                    f"in namespace {self.namespace} (context {self.context}): {message}",
                    hint="the invoke path needs the verb create on services/proxy",
                )
            raise DeployerError(
                f"the API server could not reach service/{service} in namespace "
                f"{self.namespace}: {status} {message}",
                hint=f"deployer status --to {self.target}",
            )
        return status, answer, data


def _is_api_status(headers: dict[str, str], data: bytes) -> bool:
    """Whether a proxied answer is the API server's own Status (not the model server's)."""
    if "json" not in headers.get("content-type", ""):
        return False
    try:
        body = json.loads(data)
    except ValueError:
        return False
    return (
        isinstance(body, dict) and body.get("kind") == "Status" and body.get("apiVersion") == "v1"
    )


def _namespace_missing(exc: Any) -> bool:
    return _status_message(exc)[0].startswith("namespaces ")


def _status_message(exc: Any) -> tuple[str, str]:
    """The message and reason of an ApiException's metav1.Status body."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    return str(body.get("message") or exc.reason or ""), str(body.get("reason") or exc.reason or "")


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc)
