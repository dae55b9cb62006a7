"""The fake Azure ML's data collector: data assets, datastores, the collector's checks,
and the JSON lines Azure's payload logging writes to blob storage.

- ``collector_problems``: a deployment's ``dataCollector`` against the REST model (through
  azure_rest_check) and the documented values: collections present, ``samplingRate`` in
  [0, 1], ``dataCollectionMode`` Enabled/Disabled, ``rollingRate`` one of Year, Month,
  Day, Hour, Minute, each ``dataId`` a data asset of this workspace that exists.
- ``CaptureStore``: the workspace's datastores (``workspaceblobstore`` plus any a test
  adds) and data asset versions (checked against ``DataVersionBase``; a version is
  immutable: a different body is refused 409 "already exists", as the SDK expects).
- ``write_payloads``: after a scoring call, when the deployment collects and the call is
  sampled, one line per collection (``request``: the request body, ``response``: the
  answer) appended to ``<path>/yyyy/MM/dd/HH/<instance>.jsonl`` in Azurite, in the
  collector's format (MicrosoftDocs/azure-ai-docs, articles/machine-learning/
  how-to-collect-production-data.md, "Perform payload logging" and "Store collected data
  in Blob Storage").
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from azure_rest_check import _deserialize, model_problems

ROLLING_RATES = ("Year", "Month", "Day", "Hour", "Minute")
DATA_URI = re.compile(r"^azureml://datastores/(?P<ds>[^/]+)/paths/(?P<path>.+?)/?$")
ACCOUNT = "devstoreaccount1"  # Azurite's account: the datastores' storage


@dataclass
class Written:
    """One payload line the fake collector wrote: where, and the record."""

    container: str
    blob: str
    record: dict[str, Any]


@dataclass
class CaptureStore:
    """Datastores and data assets of the fake workspace, and the collector's output."""

    workspace_id: str
    connection: str | None = None  # Azurite's connection string; None: write nothing
    datastores: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    written: list[Written] = field(default_factory=list)
    random: random.Random = field(default_factory=lambda: random.Random(7))
    instance: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        self.add_datastore("workspaceblobstore", "azureml-blobstore-fake", default=True)

    def add_datastore(self, name: str, container: str, default: bool = False) -> None:
        self.datastores[name] = {
            "id": f"{self.workspace_id}/datastores/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/datastores",
            "properties": {
                "datastoreType": "AzureBlob",
                "accountName": ACCOUNT,
                "containerName": container,
                "endpoint": "core.windows.net",
                "protocol": "https",
                "credentials": {"credentialsType": "None"},
                "isDefault": default,
            },
        }

    # -- ARM routes (called with the fake's lock held) ----------------------------------

    def put_data(self, body: Any, name: str, version: str) -> tuple[int, dict[str, Any]]:
        from azure.ai.ml._restclient.arm_ml_service.models import DataVersionBase

        model, problems = _deserialize(DataVersionBase, body, "dataVersion")
        if model is not None:
            problems += model_problems(model, "dataVersion")
        uri = ((body or {}).get("properties") or {}).get("dataUri", "")
        match = DATA_URI.match(uri)
        if not problems and match is None:
            problems.append(f"dataVersion.properties.dataUri: {uri!r} is not a datastore path")
        elif not problems and match["ds"] not in self.datastores:
            problems.append(f"dataVersion.properties.dataUri: no datastore {match['ds']!r}")
        if problems:
            return 400, _error("BadArgument", "; ".join(problems))
        existing = self.data.get((name, version))
        if existing is not None:
            if existing["properties"]["dataUri"] != uri:
                message = f"Asset {name}:{version} already exists with another dataUri."
                return 409, _error("UserError", message)
            return 200, existing
        resource = {
            "id": f"{self.workspace_id}/data/{name}/versions/{version}",
            "name": version,
            "type": "Microsoft.MachineLearningServices/workspaces/data/versions",
            "properties": {**body["properties"], "provisioningState": "Succeeded"},
        }
        self.data[(name, version)] = resource
        return 201, resource

    def get_data(self, name: str, version: str) -> tuple[int, dict[str, Any]]:
        found = self.data.get((name, version))
        if found is None:
            return 404, _error("UserError", f"data {name}:{version} not found")
        return 200, found

    def get_datastore(self, name: str) -> tuple[int, dict[str, Any]]:
        found = self.datastores.get(name)
        if found is None:
            return 404, _error("UserError", f"datastore {name} not found")
        return 200, found

    # -- the deployment's collector -----------------------------------------------------

    def collector_problems(self, body: Any) -> list[str]:
        """A deployment PUT's ``dataCollector`` (absent: nothing to check)."""
        collector = ((body or {}).get("properties") or {}).get("dataCollector")
        if collector is None:
            return []
        where = "onlineDeployment.properties.dataCollector"
        collections = collector.get("collections") if isinstance(collector, dict) else None
        if not isinstance(collections, dict) or not collections:
            return [f"{where}.collections: required, at least one collection"]
        problems: list[str] = []
        rolling = collector.get("rollingRate")
        if rolling is not None and rolling not in ROLLING_RATES:
            problems.append(f"{where}.rollingRate: {rolling!r} is not one of {ROLLING_RATES}")
        for name, collection in collections.items():
            at = f"{where}.collections.{name}"
            rate = collection.get("samplingRate")
            if rate is not None and (
                isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1
            ):
                problems.append(f"{at}.samplingRate: {rate!r} is not a rate within [0, 1]")
            mode = str(collection.get("dataCollectionMode", "")).lower()
            if mode not in ("enabled", "disabled"):
                problems.append(f"{at}.dataCollectionMode: {mode!r} is not Enabled or Disabled")
            data_id = collection.get("dataId")
            if data_id is not None and self._data_of(data_id) is None:
                problems.append(f"{at}.dataId: {data_id!r} is not a data asset of the workspace")
        return problems

    def _data_of(self, data_id: str) -> dict[str, Any] | None:
        match = re.fullmatch(
            rf"{re.escape(self.workspace_id)}/data/(?P<n>[^/]+)/versions/(?P<v>[^/]+)",
            data_id,
            re.IGNORECASE,
        )
        return self.data.get((match["n"], match["v"])) if match else None

    def write_payloads(
        self,
        deployment: dict[str, Any],
        request: tuple[bytes, str, str],
        response: tuple[bytes, str],
        now: datetime | None = None,
    ) -> None:
        """The collector's lines for one scoring call (when it is sampled)."""
        collector = deployment["properties"].get("dataCollector") or {}
        collections = {
            name: c
            for name, c in (collector.get("collections") or {}).items()
            if name in ("request", "response")
            and str(c.get("dataCollectionMode", "")).lower() == "enabled"
        }
        if not collections or self.connection is None:
            return
        rate = next(iter(collections.values())).get("samplingRate")
        if self.random.random() >= (1.0 if rate is None else rate):
            return
        now = now or datetime.now(timezone.utc)
        body, content_type, request_id = request
        correlation = str(uuid.uuid4())
        for name, collection in collections.items():
            payload, kind = (body, content_type) if name == "request" else response
            record: dict[str, Any] = {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "source": deployment["id"],
                "type": f"azureml.inference.{name}",
                "datacontenttype": kind or "application/json",
                "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "data": _data(payload, kind),
            }
            if name == "request":
                record.update(path="/score", method="POST")
            record.update(
                contentrange=f"bytes 0-{len(payload) - 1}/{len(payload)}",
                correlationid=correlation,
                xrequestid=request_id,
            )
            self._append(collection["dataId"], now, record)

    def _append(self, data_id: str, now: datetime, record: dict[str, Any]) -> None:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import BlobServiceClient

        asset = self._data_of(data_id)
        assert asset is not None, data_id
        match = DATA_URI.match(asset["properties"]["dataUri"])
        assert match is not None
        container = self.datastores[match["ds"]]["properties"]["containerName"]
        blob = f"{match['path']}/{now:%Y/%m/%d/%H}/{self.instance}.jsonl"
        assert self.connection is not None
        service = BlobServiceClient.from_connection_string(self.connection)
        with contextlib.suppress(ResourceExistsError):
            service.create_container(container)
        client = service.get_blob_client(container, blob)
        if not client.exists():
            client.create_append_blob()
        client.append_block(json.dumps(record, separators=(",", ":")).encode() + b"\n")
        self.written.append(Written(container, blob, record))


def _data(payload: bytes, content_type: str) -> Any:
    """A JSON payload as JSON, anything else as text (as the collector logs it)."""
    if "json" in (content_type or "application/json"):
        try:
            return json.loads(payload)
        except ValueError:
            pass
    return payload.decode("utf-8", "replace")


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
