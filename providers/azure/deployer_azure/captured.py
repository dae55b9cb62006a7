"""Reading back what the data collector captured: ``captured(since)``.

The cloud says where: each of this target's deployments carries its ``dataCollector``;
each collection's data asset names a datastore path, the datastore its storage account
and container. Under that path the collector writes ``yyyy/MM/dd/HH/<instance>.jsonl``,
one JSON object per logged payload (MicrosoftDocs/azure-ai-docs, articles/
machine-learning/how-to-collect-production-data.md): ``type``
``azureml.inference.request`` or ``.response``, ``time``, ``data`` (the payload, JSON
when it was JSON), ``correlationid`` (the same for a request and its response) and
``xrequestid``. Blobs are read with azure-storage-blob and the credentials of ``az://``
data URIs (data_source.py); only the hour folders at or after ``since`` are listed.

A request and its response become one ``CapturedRecord`` (``request_id`` the
``xrequestid``, ``time`` the request's, ``version`` the deployment's). Rows: the request
body's rows as the image reads them (a list, ``instances``, ``inputs`` or
``dataframe_split``); a row given as an object keeps its names, a row given as a list is
named by position (``"0"``, ``"1"``, ...; or by ``dataframe_split.columns``): the
release's signature has no feature names to give them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from deployer.providers import UsageError, monitoring
from deployer_azure import capture, endpoints
from deployer_azure.auth import azure_errors
from deployer_azure.workspace import Workspace

_DATA_ID = re.compile(r"/data/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$", re.IGNORECASE)
_PATH = re.compile(r"^azureml://datastores/(?P<ds>[^/]+)/paths/(?P<path>.+?)/?$")
_HOUR = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+$")


def captured(ws: Workspace, since: datetime | None = None) -> Iterator[monitoring.CapturedRecord]:
    """This target's captured requests at or after ``since``, oldest first."""
    with azure_errors("reading captured predictions", ws.scope):
        sources = _sources(ws)
    if not sources:
        raise UsageError(
            f"{ws.target}: no deployment of endpoint {ws.endpoint} collects data",
            hint="set monitoring.capture in deployer.yaml and push",
        )
    requests: dict[str, dict[str, Any]] = {}
    responses: dict[str, dict[str, Any]] = {}
    versions: dict[str, str | None] = {}
    for version, collection, account, container, prefix in sources:
        for line in _lines(account, container, prefix, since):
            key = str(line.get("correlationid") or line.get("id"))
            (requests if collection == capture.REQUEST else responses)[key] = line
            versions[key] = version
    records = [
        _record(key, requests.get(key), responses.get(key), versions[key])
        for key in {**requests, **responses}
    ]
    chosen = [r for r in records if since is None or r.time >= since]
    yield from sorted(chosen, key=lambda r: r.time)


def _sources(ws: Workspace) -> list[tuple[str | None, str, str, str, str]]:
    """(version, collection, account, container, blob prefix) of every collection."""
    found = []
    stores: dict[str, Any] = {}
    for deployment in endpoints.deployments(ws).values():
        collector = getattr(deployment, "data_collector", None)
        for name, collection in (getattr(collector, "collections", None) or {}).items():
            data_id = getattr(collection, "data", None)
            match = _DATA_ID.search(data_id if isinstance(data_id, str) else "")
            if name not in (capture.REQUEST, capture.RESPONSE) or match is None:
                continue
            asset = ws.ml.data.get(match["name"], version=match["version"])
            path = _PATH.match(str(asset.path))
            if path is None:
                continue
            if path["ds"] not in stores:
                stores[path["ds"]] = ws.ml.datastores.get(path["ds"])
            store = stores[path["ds"]]
            found.append(
                (
                    endpoints.version(deployment),
                    name,
                    store.account_name,
                    store.container_name,
                    path["path"].rstrip("/") + "/",
                )
            )
    return found


def _lines(
    account: str, container: str, prefix: str, since: datetime | None
) -> Iterator[dict[str, Any]]:
    """The collector's JSON objects under ``prefix`` in hour folders from ``since``."""
    from deployer_azure.data_source import service_client

    client = service_client(account).get_container_client(container)
    hour = (
        since.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0) if since else None
    )
    for blob in client.list_blobs(name_starts_with=prefix):
        folder = _HOUR.search(blob.name)
        if folder is None or not blob.name.endswith(".jsonl"):
            continue
        year, month, day, hour_of_day = (int(part) for part in folder.groups())
        at = datetime(year, month, day, hour_of_day, tzinfo=timezone.utc)
        if hour is not None and at < hour:
            continue
        text = client.download_blob(blob.name).readall().decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                yield json.loads(line)


def _record(
    key: str, request: dict[str, Any] | None, response: dict[str, Any] | None, version: str | None
) -> monitoring.CapturedRecord:
    first = request or response or {}
    return monitoring.CapturedRecord(
        request_id=str(first.get("xrequestid") or key),
        time=monitoring.parse_time(str(first.get("time"))),
        rows=_rows(request.get("data")) if request is not None else None,
        predictions=_predictions(response.get("data")) if response is not None else None,
        version=version,
        extra={"correlationid": key},
    )


def _rows(data: Any) -> list[dict[str, Any]]:
    """A request body's rows as {feature: value}."""
    columns: list[str] | None = None
    rows = data
    if isinstance(data, dict):
        split = data.get("dataframe_split")
        if isinstance(split, dict):
            rows, columns = split.get("data"), split.get("columns")
        else:
            rows = data.get("instances", data.get("inputs", data.get("data")))
    if not isinstance(rows, list):
        return []
    if rows and not isinstance(rows[0], list | dict):
        rows = [rows]  # one row
    named = []
    for row in rows:
        if isinstance(row, dict):
            named.append(dict(row))
        elif isinstance(row, list):
            names = columns or [str(i) for i in range(len(row))]
            named.append(dict(zip(names, row, strict=False)))
    return named


def _predictions(data: Any) -> list[Any] | None:
    """A response body's predictions (the image answers ``{"predictions": [...]}``)."""
    if isinstance(data, dict):
        found = data.get("predictions")
        return found if isinstance(found, list) else None
    return data if isinstance(data, list) else None
