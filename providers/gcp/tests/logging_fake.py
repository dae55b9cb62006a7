"""The fake Vertex's request-response logging: the endpoint's
``predict_request_response_logging_config`` checked against the v1 reference, the default
table Vertex creates, and one BigQuery row per sampled prediction (bigquery_fake).

The reference: ``sampling_rate`` is a fraction in (0, 1] when logging is enabled;
``bigquery_destination.output_uri`` is ``bq://projectId``, ``bq://projectId.datasetId``
or ``bq://projectId.datasetId.tableId`` (at most 2000 characters). Given only a project,
Vertex creates the dataset ``logging_<endpoint display name>_<endpoint id>`` (the name made
BigQuery compatible: other characters become ``_``); given no table, the table
``request_response_logging``; the endpoint then names the full table.
"""

from __future__ import annotations

import datetime
import itertools
import random
import re
from typing import Any

from bigquery_fake import FakeBigQuery

_URI = re.compile(r"^bq://([a-z][a-z0-9-]{4,28}[a-z0-9])(\.(\w{1,1024})(\.([\w-]{1,1024}))?)?$")
MAX_URI = 2000
TABLE = "request_response_logging"
_ids = itertools.count(1_000_001)


class InvalidLogging(ValueError):
    """A logging config Vertex would refuse (INVALID_ARGUMENT)."""


def check(config: Any, field: str) -> None:
    """Raise InvalidLogging naming the field when ``config`` breaks the reference."""
    if not config.enabled:
        return
    if not 0 < config.sampling_rate <= 1:
        raise InvalidLogging(
            f"{field}.sampling_rate must be in (0, 1] when logging is enabled, "
            f"got {config.sampling_rate}."
        )
    uri = config.bigquery_destination.output_uri
    if not uri:
        raise InvalidLogging(f"{field}.bigquery_destination.output_uri is required.")
    if len(uri) > MAX_URI or not _URI.match(uri):
        raise InvalidLogging(
            f"{field}.bigquery_destination.output_uri {uri!r} must be bq://projectId, "
            "bq://projectId.datasetId or bq://projectId.datasetId.tableId."
        )


def resolve(endpoint: Any) -> None:
    """Name the full table in the endpoint's config, as Vertex does once it created it."""
    config = endpoint.predict_request_response_logging_config
    if not config.enabled:
        return
    match = _URI.match(config.bigquery_destination.output_uri)
    assert match is not None  # checked
    project, dataset, table = match.group(1), match.group(3), match.group(5)
    if dataset is None:
        dataset = "logging_" + re.sub(r"\W", "_", endpoint.display_name) + "_"
        dataset += endpoint.name.rsplit("/", 1)[1]
    config.bigquery_destination.output_uri = f"bq://{project}.{dataset}.{table or TABLE}"


def log(
    bigquery: FakeBigQuery,
    endpoint: Any,
    deployed_model_id: str,
    request: bytes,
    response: bytes,
    chance: float | None = None,
) -> bool:
    """Append the prediction's row when the endpoint logs and the sample draws it."""
    config = endpoint.predict_request_response_logging_config
    if not config.enabled:
        return False
    draw = random.random() if chance is None else chance
    if draw >= config.sampling_rate:
        return False
    table = config.bigquery_destination.output_uri.removeprefix("bq://")
    bigquery.append(
        table,
        {
            "endpoint": endpoint.name,
            "deployed_model_id": deployed_model_id,
            "logging_time": datetime.datetime.now(datetime.timezone.utc),
            "request_id": next(_ids),
            "request_payload": [request.decode("utf-8", "replace")],
            "response_payload": [response.decode("utf-8", "replace")],
        },
    )
    return True
