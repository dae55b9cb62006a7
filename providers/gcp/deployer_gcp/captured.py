"""Read back what Vertex AI's request-response logging captured: the BigQuery table the
endpoint's ``predict_request_response_logging_config`` names, queried with
google-cloud-bigquery (``jobs.query``: ``WHERE logging_time >= @since ORDER BY
logging_time``, so BigQuery filters and sorts and rows stream oldest first).

Vertex writes one row per sampled prediction: ``endpoint``, ``deployed_model_id``,
``logging_time``, ``request_id``, ``request_payload`` and ``response_payload`` (the bodies
as JSON text; REPEATED STRING). A request ``{"instances": [...]}`` becomes rows: a list
instance as ``{"f0": v, "f1": v, ...}`` (a tabular signature carries no column names), an
object instance as it is (columns or named tensors by name); the response's
``{"predictions": [...]}`` the predictions. Bodies that are not such JSON (rawPredict
takes CSV too) leave ``rows`` or ``predictions`` None and keep the text in ``extra``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from deployer.providers import UsageError
from deployer.providers.monitoring import CapturedRecord
from deployer_gcp import capture, traffic
from deployer_gcp.scope import Scope

# Vertex's logging columns; the table name is checked against BigQuery's naming rules
COLUMNS = "endpoint, deployed_model_id, logging_time, request_id, request_payload, response_payload"
_TABLE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]\.\w{1,1024}\.[\w-]{1,1024}$")


def query(table: str, since: datetime | None) -> str:
    """The GoogleSQL that reads the logged predictions (``@since`` when given)."""
    if not _TABLE.match(table):
        raise UsageError(f"logging table {table!r}: expected PROJECT.DATASET.TABLE")
    where = " WHERE logging_time >= @since" if since is not None else ""
    return f"SELECT {COLUMNS} FROM `{table}`{where} ORDER BY logging_time"


def captured(scope: Scope, since: datetime | None = None) -> Iterator[CapturedRecord]:
    """The endpoint's logged predictions at or after ``since``, oldest first."""
    endpoint = scope.require_endpoint()
    enabled, _rate, uri = capture.current(endpoint)
    table = table_id(endpoint, uri)
    if not enabled and table is None:
        raise UsageError(
            f"{scope.target}: endpoint {endpoint.display_name} logs no requests",
            hint="set monitoring.capture in deployer.yaml and push",
        )
    if table is None:
        raise UsageError(f"{scope.target}: endpoint {endpoint.display_name}: logging to {uri!r}")
    versions = {dm.id: traffic.version_of(dm) or dm.id for dm in endpoint.deployed_models}
    for row in _rows(scope, table, since):
        yield record(row, versions)


def table_id(endpoint: Any, uri: str) -> str | None:
    """``project.dataset.table`` of the logging URI, Vertex's default table when the URI
    names only a project or a dataset; None when there is no URI."""
    if not uri.startswith("bq://"):
        return None
    parts = uri.removeprefix("bq://").split(".")
    if len(parts) == 1:
        endpoint_id = endpoint.name.rsplit("/", 1)[-1]
        cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in endpoint.display_name)
        parts.append(f"logging_{cleaned}_{endpoint_id}")
    if len(parts) == 2:
        parts.append(capture.DEFAULT_TABLE)
    return ".".join(parts)


def _rows(scope: Scope, table: str, since: datetime | None) -> Iterator[Any]:
    """The table's rows at or after ``since``, oldest first, through the real client."""
    from google.api_core.exceptions import GoogleAPICallError, NotFound
    from google.cloud import bigquery

    sql = query(table, since)
    config = bigquery.QueryJobConfig()
    if since is not None:
        moment = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        config.query_parameters = [bigquery.ScalarQueryParameter("since", "TIMESTAMP", moment)]
    options: dict[str, Any] = {}
    if scope.options.bigquery_endpoint:
        options["api_endpoint"] = scope.options.bigquery_endpoint
    client = bigquery.Client(
        project=scope.options.project, credentials=scope.credentials, client_options=options
    )
    try:
        yield from client.query_and_wait(sql, job_config=config)
    except NotFound:
        raise UsageError(
            f"{scope.target}: the logging table {table} does not exist yet",
            hint="Vertex AI creates it with the first logged prediction",
        ) from None
    except GoogleAPICallError as exc:
        raise UsageError(f"{scope.target}: BigQuery answered for {table}: {exc.message}") from None
    finally:
        client.close()


def record(row: Any, versions: dict[str, str]) -> CapturedRecord:
    """One logged row as a CapturedRecord (see the module docstring)."""
    request = _joined(row.get("request_payload"))
    response = _joined(row.get("response_payload"))
    rows, extra = _instances(request), {}
    predictions = _predictions(response)
    if rows is None and request:
        extra["request_payload"] = request
    if predictions is None and response:
        extra["response_payload"] = response
    deployed = str(row.get("deployed_model_id") or "")
    time = row.get("logging_time")
    if time.tzinfo is None:
        time = time.replace(tzinfo=timezone.utc)
    return CapturedRecord(
        str(row.get("request_id")),
        time,
        rows,
        predictions,
        versions.get(deployed, deployed or None),
        {"deployed_model_id": deployed, **extra},
    )


def _joined(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "".join(str(v) for v in value)
    return str(value)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _instances(text: str) -> list[dict[str, Any]] | None:
    body = _json(text)
    if not isinstance(body, dict) or not isinstance(body.get("instances"), list):
        return None
    rows: list[dict[str, Any]] = []
    for instance in body["instances"]:
        if isinstance(instance, dict):
            rows.append(dict(instance))
        elif isinstance(instance, list):
            rows.append({f"f{i}": value for i, value in enumerate(instance)})
        else:
            rows.append({"f0": instance})
    return rows


def _predictions(text: str) -> list[Any] | None:
    body = _json(text)
    if not isinstance(body, dict) or not isinstance(body.get("predictions"), list):
        return None
    return list(body["predictions"])
