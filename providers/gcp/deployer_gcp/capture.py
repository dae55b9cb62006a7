"""Prediction capture on Vertex AI: the endpoint's request-response logging to BigQuery.

``monitoring.capture`` maps onto the endpoint's ``predict_request_response_logging_config``:
``enabled``, ``sampling_rate`` (CaptureSpec.rate, a fraction in (0, 1]) and
``bigquery_destination.output_uri``: ``capture.destination`` when it is ``bq://...``, else
(no destination) ``bq://<target project>``, for which Vertex creates the dataset
``logging_<endpoint display name>_<endpoint id>`` and the table ``request_response_logging``.
It is set when the endpoint is created and updated (UpdateEndpoint, field mask
``predict_request_response_logging_config``) when it differs; an identical push changes
nothing. Without ``monitoring.capture`` a logging config deployer finds is disabled.

Vertex logs whole requests and responses: it cannot drop or hash fields, nor log only
one side, so ``redact``, ``inputs: false`` and ``outputs: false`` are Plan problems here,
as is a destination that is not BigQuery.
"""

from __future__ import annotations

import math
import re
from typing import Any

from deployer.providers import Change, Progress, Release, UsageError
from deployer.providers.monitoring import CaptureSpec
from deployer_gcp.scope import Scope

FIELD = "predict_request_response_logging_config"
DEFAULT_TABLE = "request_response_logging"
# bq://project[.dataset[.table]] (BigQuery's names: dataset letters, digits, _; at most 1024)
_BQ = re.compile(r"^bq://([a-z][a-z0-9-]{4,28}[a-z0-9])(\.(\w{1,1024})(\.([\w-]{1,1024}))?)?$")


def destination(scope: Scope, spec: CaptureSpec) -> str:
    """The BigQuery URI Vertex will log to."""
    return spec.destination or f"bq://{scope.options.project}"


def problems(scope: Scope, release: Release) -> list[str]:
    """What Vertex's request-response logging cannot do of ``release.capture``."""
    spec = release.capture
    if spec is None:
        return []
    target = scope.target
    found: list[str] = []
    uri = destination(scope, spec)
    if not _BQ.match(uri):
        found.append(
            f"{target}: monitoring.capture.destination {uri!r}: Vertex AI logs requests and "
            "responses to BigQuery only; expected bq://PROJECT[.DATASET[.TABLE]] "
            f"(or no destination: bq://{scope.options.project}, a dataset Vertex creates)"
        )
    redacted = [*spec.drop, *spec.hash]
    if redacted:
        found.append(
            f"{target}: monitoring.capture.redact ({', '.join(redacted)}): Vertex AI's "
            "request-response logging writes whole requests and cannot drop or hash fields; "
            "remove redact for this target, or capture with the image itself on another target"
        )
    for side in ("inputs", "outputs"):
        if not getattr(spec, side):
            found.append(
                f"{target}: monitoring.capture.{side}: false: Vertex AI logs both the request "
                f"and the response; set {side}: true for this target"
            )
    return found


def current(endpoint: Any) -> tuple[bool, float, str]:
    """(enabled, sampling rate, output URI) of ``endpoint``'s logging config."""
    config = getattr(endpoint, FIELD, None)
    if config is None:
        return False, 0.0, ""
    return (
        bool(config.enabled),
        float(config.sampling_rate),
        str(config.bigquery_destination.output_uri),
    )


def same_uri(wanted: str, actual: str) -> bool:
    """Whether ``actual`` is ``wanted``, or what Vertex made of it (a table it created in
    the project or dataset ``wanted`` names)."""
    return actual == wanted or actual.startswith(wanted + ".")


def wanted(scope: Scope, release: Release) -> tuple[bool, float, str] | None:
    """(enabled, rate, URI) ``release`` asks for; None when it asks for no capture."""
    spec = release.capture
    if spec is None:
        return None
    return True, spec.rate, destination(scope, spec)


def differs(scope: Scope, endpoint: Any, release: Release) -> bool:
    """Whether the endpoint's logging is not what ``release`` asks for."""
    enabled, rate, uri = current(endpoint)
    want = wanted(scope, release)
    if want is None:
        return enabled
    return not (enabled and math.isclose(rate, want[1]) and same_uri(want[2], uri))


def describe(scope: Scope, release: Release) -> str:
    """What the endpoint's logging will be, for plan and progress."""
    want = wanted(scope, release)
    if want is None:
        return "request-response logging disabled"
    return f"request-response logging: sampling_rate {want[1]:g} to {want[2]}"


def plan_change(scope: Scope, endpoint: Any | None, release: Release) -> Change | None:
    """The plan's line for the endpoint's logging (None: nothing asked, nothing to undo)."""
    display = scope.display()
    if endpoint is None:
        if release.capture is None:
            return None
        return Change("create", f"endpoint {display} logging", describe(scope, release))
    if differs(scope, endpoint, release):
        return Change("update", f"endpoint {display} logging", describe(scope, release))
    if release.capture is None:
        return None
    return Change("keep", f"endpoint {display} logging", describe(scope, release))


def config(scope: Scope, release: Release) -> Any:
    """The PredictRequestResponseLoggingConfig ``release`` asks for (disabled: none)."""
    types = scope.api.types
    want = wanted(scope, release)
    if want is None:
        return types.PredictRequestResponseLoggingConfig(enabled=False)
    return types.PredictRequestResponseLoggingConfig(
        enabled=True,
        sampling_rate=want[1],
        bigquery_destination=types.BigQueryDestination(output_uri=want[2]),
    )


def check(scope: Scope, release: Release) -> None:
    """A UsageError naming what Vertex cannot capture (deploy without a plan first)."""
    found = problems(scope, release)
    if found:
        raise UsageError("; ".join(found))


def apply(scope: Scope, endpoint: Any, release: Release, progress: Progress) -> bool:
    """Update the endpoint's logging when it differs; True when it did."""
    if not differs(scope, endpoint, release):
        return False
    progress(f"{endpoint.display_name}: {describe(scope, release)}")
    scope.api.update_logging(endpoint.name, config(scope, release))
    return True
