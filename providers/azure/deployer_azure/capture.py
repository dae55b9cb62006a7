"""Prediction capture on Azure ML: the online deployment's data collector.

deployer's image is a custom container with no ``azureml-ai-monitoring`` inside, so the
collector's *custom logging* collections (``model_inputs``/``model_outputs``, written by
that SDK from a scoring script) would stay empty. What works for any container is
*payload logging*: the reserved collections ``request`` and ``response``, which the
platform fills with the HTTP bodies of the scoring route (MicrosoftDocs/azure-ai-docs,
articles/machine-learning/how-to-collect-production-data.md, "Perform payload logging").
``capture.inputs`` enables ``request``, ``capture.outputs`` ``response``; the sampling
rate is ``CaptureSpec.rate`` (a fraction, 0-1); data rolls hourly.

Destination (each collection is registered as a data asset pointing at a datastore path):
- none: the workspace's default, ``azureml://datastores/workspaceblobstore/paths/
  modelDataCollector``;
- ``azureml://datastores/<name>/paths/<path>``: that datastore path;
- ``az://<account>/<container>[/<path>]``: the workspace datastore registered for that
  account and container (looked up with ``datastores.list``), else a plan problem.
Under it the collector writes ``<endpoint>/<deployment>/<collection>/yyyy/MM/dd/HH/
<instance>.jsonl``. Azure's collector cannot drop or hash fields: a ``redact`` is a plan
problem (the push stops before anything changes).

The capture a deployment runs with is recorded in its ``deployer-capture`` tag, so an
identical push changes nothing and a changed capture updates the live deployment in place.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from deployer.providers import UsageError, monitoring

DEFAULT_DATASTORE = "workspaceblobstore"
DEFAULT_PATH = "modelDataCollector"
ROLLING_RATE = "Hour"
TAG_CAPTURE = "deployer-capture"
REQUEST, RESPONSE = "request", "response"
_AZUREML = re.compile(r"^azureml://datastores/(?P<ds>[^/]+)/paths/(?P<path>.*?)/?$")
_AZ = re.compile(r"^az://(?P<account>[^/]+)/(?P<container>[^/]+)(?:/(?P<path>.*?))?/?$")


@dataclass(frozen=True)
class Destination:
    """A datastore and the path under it where the collections go."""

    datastore: str
    path: str

    def collection_path(self, endpoint: str, deployment: str, collection: str) -> str:
        base = f"{self.path}/" if self.path else ""
        return (
            f"azureml://datastores/{self.datastore}/paths/"
            f"{base}{endpoint}/{deployment}/{collection}"
        )

    def __str__(self) -> str:
        return f"azureml://datastores/{self.datastore}/paths/{self.path}"


def collections(spec: monitoring.CaptureSpec) -> list[str]:
    """The payload-logging collections the spec turns on."""
    return [name for name, on in ((REQUEST, spec.inputs), (RESPONSE, spec.outputs)) if on]


def problems(spec: monitoring.CaptureSpec | None) -> list[str]:
    """What Azure's data collector cannot do of ``spec`` (the plan's problems)."""
    if spec is None:
        return []
    found: list[str] = []
    if spec.drop or spec.hash:
        fields = ", ".join([*(f"drop {f}" for f in spec.drop), *(f"hash {f}" for f in spec.hash)])
        found.append(
            "monitoring.capture.redact: Azure ML's data collector logs the request and "
            f"response payloads as sent and cannot drop or hash fields ({fields}); remove "
            "redact for this target, or capture with the image's own capture (kubernetes, local)"
        )
    if not collections(spec):
        found.append(
            "monitoring.capture: inputs and outputs are both false: Azure ML's data "
            "collector would collect nothing"
        )
    destination = spec.destination
    if destination and not (_AZUREML.match(destination) or _AZ.match(destination)):
        found.append(
            f"monitoring.capture.destination: {destination!r} is not a place Azure ML's data "
            "collector writes to; expected az://<account>/<container>[/<path>] or "
            "azureml://datastores/<name>/paths/<path> (or none: the workspace's blob store)"
        )
    return found


def destination(spec: monitoring.CaptureSpec, datastores: Any) -> Destination:
    """Where the collections go; ``datastores`` (azure-ai-ml DatastoreOperations) is asked
    only for an ``az://`` destination. UsageError when no datastore serves it."""
    text = spec.destination
    if not text:
        return Destination(DEFAULT_DATASTORE, DEFAULT_PATH)
    found = _AZUREML.match(text)
    if found:
        return Destination(found["ds"], found["path"])
    found = _AZ.match(text)
    if found is None:
        raise UsageError(problems(spec)[-1])
    for store in datastores.list():
        if (
            getattr(store, "account_name", None) == found["account"]
            and getattr(store, "container_name", None) == found["container"]
        ):
            return Destination(store.name, found["path"] or DEFAULT_PATH)
    raise UsageError(
        f"monitoring.capture.destination: {text}: no datastore of the workspace is the "
        f"container {found['container']!r} of the storage account {found['account']!r}",
        hint="register it (az ml datastore create --type azure_blob) or give "
        "azureml://datastores/<name>/paths/<path>",
    )


def tag(spec: monitoring.CaptureSpec | None, where: Destination | None) -> str:
    """The ``deployer-capture`` tag value: what the collector is configured with."""
    if spec is None or where is None:
        return "off"
    return f"{'+'.join(collections(spec))} rate {spec.rate:g} to {where}"[:256]


def describe(spec: monitoring.CaptureSpec | None) -> str:
    """The plan's words for the data collector the spec asks for."""
    if spec is None:
        return "data collector off"
    where = spec.destination or f"azureml://datastores/{DEFAULT_DATASTORE}/paths/{DEFAULT_PATH}"
    return (
        f"data collector: {' and '.join(collections(spec))} payloads, sampling_rate "
        f"{spec.rate:g}, rolling hourly, to {where}"
    )


def collector(
    spec: monitoring.CaptureSpec, where: Destination, endpoint: str, deployment: str
) -> Any:
    """The azure-ai-ml DataCollector entity of a deployment."""
    from azure.ai.ml.entities import DataAsset, DataCollector, DeploymentCollection

    # the collector's entities are "experimental": the SDK warns on each one, on stderr
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
    return DataCollector(
        collections={
            name: DeploymentCollection(
                enabled="true",
                data=DataAsset(
                    name=f"{endpoint}-{deployment}-{name}",
                    path=where.collection_path(endpoint, deployment, name),
                    version="1",  # type: ignore[arg-type]  # the SDK's schema wants a string
                ),
            )
            for name in collections(spec)
        },
        sampling_rate=spec.rate,
        rolling_rate=ROLLING_RATE,
    )


def resolve(
    spec: monitoring.CaptureSpec | None, datastores: Any
) -> tuple[Destination | None, list[str]]:
    """(where the collections go, or None; the plan's problems) for ``spec``."""
    found = problems(spec)
    if spec is None or found:
        return None, found
    try:
        return destination(spec, datastores), []
    except UsageError as exc:
        return None, [str(exc) + (f" ({exc.hint})" if getattr(exc, "hint", None) else "")]


def live_tag(deployment: Any) -> str:
    """The capture a deployment was configured with (its tag; ``off`` when none)."""
    return str((getattr(deployment, "tags", None) or {}).get(TAG_CAPTURE, "off"))
