"""A thin, typed layer over the Vertex AI v1 GAPIC clients of google-cloud-aiplatform.

The GAPIC clients (rather than ``aiplatform.init`` and the high-level resource classes)
because: long-running operations are polled by name here, so ``wait`` owns the timeout
and the progress messages (no fixed 900 s SDK limit); no process-wide ``aiplatform.init``
state, so targets in different projects, regions or API endpoints run in parallel; the
high-level ``Endpoint.raw_predict`` ignores ``api_endpoint`` (it always calls
``REGION-aiplatform.googleapis.com``), which Private Service Connect cannot use.

Every call carries a google.api_core Retry for throttling (429 RESOURCE_EXHAUSTED) and
transient unavailability (503 UNAVAILABLE), with exponential backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from deployer.providers import Progress
from deployer_gcp import names
from deployer_gcp.errors import OperationFailed, OperationTimeout, translated
from deployer_gcp.names import seconds
from deployer_gcp.options import VertexOptions
from deployer_gcp.traffic import created

PROGRESS_EVERY = 30.0  # seconds between "still running" messages while polling


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("deployer-gcp")
    except Exception:  # pragma: no cover - not installed as a distribution
        return "0"


class VertexApi:
    """The calls deployer makes to Vertex AI for one project and region."""

    def __init__(
        self, options: VertexOptions, credentials: Any, on_retry: Callable[[str], None]
    ) -> None:
        from google.api_core import exceptions as gexc
        from google.api_core import retry as gretry
        from google.api_core.client_options import ClientOptions
        from google.api_core.gapic_v1.client_info import ClientInfo
        from google.cloud import aiplatform_v1

        self.options = options
        self.parent = f"projects/{options.project}/locations/{options.region}"
        self.host = options.api_endpoint or f"{options.region}-aiplatform.googleapis.com"
        client_options = ClientOptions(api_endpoint=self.host)
        info = ClientInfo(user_agent=f"deployer-gcp/{_version()}")
        kwargs: dict[str, Any] = {
            "credentials": credentials,
            "client_options": client_options,
            "client_info": info,
        }
        self.endpoints = aiplatform_v1.EndpointServiceClient(**kwargs)
        self.models = aiplatform_v1.ModelServiceClient(**kwargs)
        self.predictions = aiplatform_v1.PredictionServiceClient(**kwargs)
        self.jobs = aiplatform_v1.JobServiceClient(**kwargs)  # batch prediction (batch.py)
        self.types = aiplatform_v1

        def report(exc: Exception) -> None:
            code = getattr(getattr(exc, "grpc_status_code", None), "name", type(exc).__name__)
            on_retry(f"Vertex AI answered {code}; retrying with backoff")

        self.retry = gretry.Retry(
            predicate=gretry.if_exception_type(gexc.ResourceExhausted, gexc.ServiceUnavailable),
            initial=options.retry_initial_delay,
            maximum=max(options.retry_initial_delay, 30.0),
            multiplier=2.0,
            timeout=options.retry_deadline,
            on_error=report,
        )

    # -- endpoints ---------------------------------------------------------------------

    def find_endpoints(self, labels: Mapping[str, str]) -> list[Any]:
        """Endpoints carrying all ``labels``, oldest first."""
        with translated("list endpoints in", self.parent):
            pages = self.endpoints.list_endpoints(
                request={"parent": self.parent, "filter": names.label_filter(labels)},
                retry=self.retry,
            )
            found = [e for e in pages if names.has_labels(e.labels, labels)]
        return sorted(found, key=created)

    def get_endpoint(self, name: str) -> Any:
        with translated("read endpoint", name):
            return self.endpoints.get_endpoint(name=name, retry=self.retry)

    def create_endpoint(
        self, display_name: str, labels: Mapping[str, str], logging: Any = None
    ) -> str:
        """Start creating an endpoint (with request-response ``logging`` when given);
        returns the operation name."""
        endpoint = self.types.Endpoint(display_name=display_name, labels=dict(labels))
        if logging is not None:
            endpoint.predict_request_response_logging_config = logging
        with translated("create endpoint", f"{display_name} in {self.parent}"):
            operation = self.endpoints.create_endpoint(
                parent=self.parent, endpoint=endpoint, retry=self.retry
            )
        return str(operation.operation.name)

    def set_traffic(
        self, endpoint: str, split: Mapping[str, int], labels: Mapping[str, str] | None = None
    ) -> Any:
        """Replace the endpoint's traffic split (and labels, when given)."""
        from google.protobuf import field_mask_pb2

        paths = ["traffic_split"]
        update = self.types.Endpoint(name=endpoint, traffic_split=dict(split))
        if labels is not None:
            paths.append("labels")
            update.labels = dict(labels)
        with translated("update the traffic split of", endpoint):
            return self.endpoints.update_endpoint(
                endpoint=update,
                update_mask=field_mask_pb2.FieldMask(paths=paths),
                retry=self.retry,
            )

    def update_logging(self, endpoint: str, logging: Any) -> Any:
        """Replace the endpoint's request-response logging config."""
        from google.protobuf import field_mask_pb2

        update = self.types.Endpoint(name=endpoint, predict_request_response_logging_config=logging)
        with translated("update the request-response logging of", endpoint):
            return self.endpoints.update_endpoint(
                endpoint=update,
                update_mask=field_mask_pb2.FieldMask(
                    paths=["predict_request_response_logging_config"]
                ),
                retry=self.retry,
            )

    def deploy_model(self, endpoint: str, deployed_model: Any, split: Mapping[str, int]) -> str:
        with translated("deploy a model to", endpoint):
            operation = self.endpoints.deploy_model(
                endpoint=endpoint,
                deployed_model=deployed_model,
                traffic_split=dict(split),
                retry=self.retry,
            )
        return str(operation.operation.name)

    def undeploy_model(
        self, endpoint: str, deployed_model_id: str, split: Mapping[str, int]
    ) -> str:
        request = self.types.UndeployModelRequest(
            endpoint=endpoint, deployed_model_id=deployed_model_id, traffic_split=dict(split)
        )
        with translated(f"undeploy deployed model {deployed_model_id} from", endpoint):
            operation = self.endpoints.undeploy_model(request=request, retry=self.retry)
        return str(operation.operation.name)

    def delete_endpoint(self, name: str) -> str:
        with translated("delete endpoint", name):
            operation = self.endpoints.delete_endpoint(name=name, retry=self.retry)
        return str(operation.operation.name)

    # -- models ------------------------------------------------------------------------

    def find_models(self, labels: Mapping[str, str]) -> list[Any]:
        """Models carrying all ``labels``, newest first."""
        with translated("list models in", self.parent):
            pages = self.models.list_models(
                request={"parent": self.parent, "filter": names.label_filter(labels)},
                retry=self.retry,
            )
            found = [m for m in pages if names.has_labels(m.labels, labels)]
        return sorted(found, key=created, reverse=True)

    def upload_model(
        self,
        display_name: str,
        image_uri: str,
        labels: Mapping[str, str],
        predict_route: str,
        health_route: str,
        env: Mapping[str, str],
        port: int,
    ) -> str:
        types = self.types
        model = types.Model(
            display_name=display_name,
            labels=dict(labels),
            container_spec=types.ModelContainerSpec(
                image_uri=image_uri,
                predict_route=predict_route,
                health_route=health_route,
                ports=[types.Port(container_port=port)],
                env=[types.EnvVar(name=k, value=v) for k, v in sorted(env.items())],
            ),
        )
        with translated("upload model", f"{display_name} to {self.parent}"):
            operation = self.models.upload_model(parent=self.parent, model=model, retry=self.retry)
        return str(operation.operation.name)

    def get_model(self, name: str) -> Any:
        with translated("read model", name):
            return self.models.get_model(name=name, retry=self.retry)

    def delete_model(self, name: str) -> str:
        with translated("delete model", name):
            operation = self.models.delete_model(name=name, retry=self.retry)
        return str(operation.operation.name)

    # -- predictions -------------------------------------------------------------------

    def raw_predict(self, endpoint: str, body: bytes, content_type: str) -> Any:
        """POST ``body`` through the endpoint's rawPredict; raises GoogleAPICallError."""
        from google.api import httpbody_pb2

        return self.predictions.raw_predict(
            endpoint=endpoint,
            http_body=httpbody_pb2.HttpBody(data=body, content_type=content_type),
            retry=self.retry,
            timeout=120.0,
        )

    def predict(self, endpoint: str, instances: list[Any]) -> Any:
        """Predict ``instances`` through the endpoint; the PredictResponse names the
        deployed model that served it (``deployed_model_id``). Raises GoogleAPICallError."""
        return self.predictions.predict(
            endpoint=endpoint, instances=instances, retry=self.retry, timeout=120.0
        )

    # -- long-running operations -------------------------------------------------------

    def get_operation(self, name: str) -> Any:
        with translated("read operation", name):
            return self.endpoints.get_operation(request={"name": name}, retry=self.retry)

    def cancel_operation(self, name: str) -> None:
        """Ask Vertex to cancel operation ``name`` (best effort: it may still finish)."""
        with translated("cancel operation", name):
            self.endpoints.cancel_operation(request={"name": name}, retry=self.retry)

    def wait_operation(
        self,
        name: str,
        action: str,
        deadline: float,
        progress: Progress,
        result_type: Any = None,
    ) -> Any:
        """Poll operation ``name`` until done or ``deadline`` (monotonic); return its result.

        Raises OperationFailed with Vertex's own error message, or OperationTimeout.
        """
        started = time.monotonic()
        next_note = started + PROGRESS_EVERY
        while True:
            operation = self.get_operation(name)
            if operation.done:
                break
            now = time.monotonic()
            if now >= deadline:
                raise OperationTimeout(action, name, now - started, "still running")
            if now >= next_note:
                progress(f"{action}: still running after {seconds(now - started)}")
                next_note = now + PROGRESS_EVERY
            time.sleep(min(self.options.poll_interval, max(0.0, deadline - now)))
        if operation.HasField("error"):
            raise OperationFailed(action, name, operation.error.message or "unknown error")
        if result_type is None:
            return None
        return result_type.deserialize(operation.response.value)
