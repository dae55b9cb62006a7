"""SageMaker data capture from ``monitoring.capture`` (``Release.capture``): the endpoint
config's ``DataCaptureConfig``, what ``plan`` shows of it, and what SageMaker refuses.

- ``InitialSamplingPercentage``: ``CaptureSpec.percent`` (whole percents, at least 1;
  ``percent_note`` becomes a plan note when the fraction is not a whole percent);
- ``DestinationS3Uri``: ``monitoring.capture.destination`` when it is an ``s3://`` URI,
  else the target's ``capture_s3_uri`` option; SageMaker writes under
  ``<destination>/<endpoint>/AllTraffic/yyyy/mm/dd/hh/``;
- ``CaptureOptions``: ``Input`` / ``Output`` from ``inputs`` / ``outputs``;
- ``CaptureContentTypeHeader``: CSV and JSON bodies are captured as text (anything else
  base64), so ``captured()`` can read them back into rows.

SageMaker captures whole bodies: it cannot drop or hash fields (``redact``), and serverless
endpoints have no data capture; both are plan problems. The config is part of the
endpoint config (its name hashes it), so changing capture makes a new endpoint config and
an unchanged push changes nothing.
"""

from __future__ import annotations

from typing import Any

from deployer.providers import Change, monitoring
from deployer_aws.options import SageMakerOptions

CSV_TYPES = ["text/csv"]
JSON_TYPES = ["application/json", "application/jsonlines"]


def destination(spec: monitoring.CaptureSpec, options: SageMakerOptions) -> str | None:
    """Where SageMaker writes: the capture's s3:// destination, else ``capture_s3_uri``."""
    if spec.destination and spec.destination.startswith("s3://"):
        return spec.destination.rstrip("/")
    if options.capture_s3_uri:
        return options.capture_s3_uri.rstrip("/")
    return None


def problems(
    spec: monitoring.CaptureSpec | None, options: SageMakerOptions, target: str
) -> list[str]:
    """What SageMaker would refuse (or could not do) in ``spec`` on this target."""
    if spec is None:
        return []
    found: list[str] = []
    where = f"monitoring.capture on SageMaker target {target}"
    if options.serverless is not None:
        found.append(
            f"{where}: serverless endpoints have no data capture; deploy on instances "
            f"(remove targets.{target}.serverless) or capture on another target"
        )
    if spec.drop or spec.hash:
        fields = ", ".join([*spec.drop, *spec.hash])
        found.append(
            f"{where}: redact ({fields}) is not possible: SageMaker captures whole request "
            "and response bodies; remove monitoring.capture.redact, or capture on a target "
            "whose image captures (kubernetes, local)"
        )
    if not spec.inputs and not spec.outputs:
        found.append(f"{where}: inputs and outputs are both false: nothing to capture")
    if destination(spec, options) is None:
        given = (
            f"destination {spec.destination!r} is not an s3:// URI"
            if spec.destination
            else ("no destination")
        )
        found.append(
            f"{where}: {given}; set monitoring.capture.destination: s3://BUCKET/PREFIX or "
            f"targets.{target}.capture_s3_uri"
        )
    return found


def data_capture_config(
    spec: monitoring.CaptureSpec | None, options: SageMakerOptions
) -> dict[str, Any]:
    """The endpoint config's ``DataCaptureConfig`` ({} when nothing is captured or
    ``problems`` finds something SageMaker refuses)."""
    if spec is None or problems(spec, options, "-"):
        return {}
    modes = [m for m, on in (("Input", spec.inputs), ("Output", spec.outputs)) if on]
    return {
        "EnableCapture": True,
        "InitialSamplingPercentage": spec.percent,
        "DestinationS3Uri": destination(spec, options),
        "CaptureOptions": [{"CaptureMode": mode} for mode in modes],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": list(CSV_TYPES),
            "JsonContentTypes": list(JSON_TYPES),
        },
    }


def describe(config: dict[str, Any]) -> str:
    """One line for ``plan``: percent, modes and destination."""
    modes = "+".join(o["CaptureMode"] for o in config.get("CaptureOptions", []))
    return (
        f"{config.get('InitialSamplingPercentage')}% of requests ({modes}) to "
        f"{config.get('DestinationS3Uri')}"
    )


def change(endpoint: str, want: dict[str, Any], live: dict[str, Any] | None) -> Change | None:
    """The plan line for the endpoint's data capture: ``want`` against the live config's
    (``live``: None when there is no endpoint)."""
    live = _normal(live or {})
    resource = f"data capture of endpoint {endpoint}"
    if not want:
        return Change("delete", resource, "capture off") if live else None
    if _normal(want) == live:
        return Change("keep", resource, describe(want))
    return Change("update" if live else "create", resource, describe(want))


def notes(spec: monitoring.CaptureSpec | None, target: str) -> list[str]:
    """Advice that refuses nothing: the whole-percent rounding."""
    note = spec.percent_note if spec is not None else None
    return [f"{target}: {note}"] if note else []


def _normal(config: dict[str, Any]) -> dict[str, Any]:
    """The fields that define the capture (an echo may add defaults or drop false ones)."""
    if not config or config.get("EnableCapture") is False:
        return {}
    header = config.get("CaptureContentTypeHeader") or {}
    return {
        "percent": config.get("InitialSamplingPercentage"),
        "uri": str(config.get("DestinationS3Uri", "")).rstrip("/"),
        "modes": sorted(o.get("CaptureMode", "") for o in config.get("CaptureOptions", [])),
        "csv": sorted(header.get("CsvContentTypes") or []),
        "json": sorted(header.get("JsonContentTypes") or []),
    }
