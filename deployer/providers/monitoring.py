"""Monitoring types shared by the core, the image and the providers: what capture a
release asks for, in one unit (a fraction) and converted to each cloud's here, and one
captured request as every reader returns it.

The image's own capture (Kubernetes, local) writes one JSON object per line:
``{"request_id": str, "time": "2026-12-07T04:31:00.123Z", "version": str,
"rows": [{feature: value, ...}, ...], "predictions": [...]}``; ``rows`` is absent when
inputs are not captured, ``predictions`` when outputs are not; a redacted field is absent
(dropped) or ``"sha256:<hex>"`` (hashed). ``CapturedRecord.from_json`` reads it. Written
to a folder: files ``capture-*.jsonl``; to stdout: each line prefixed with
``CAPTURE_STDOUT_PREFIX`` so that a log reader (Kubernetes pod logs) finds them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol, runtime_checkable

CAPTURE_ENV = "DEPLOYER_CAPTURE"
CAPTURE_STDOUT_PREFIX = "deployer-capture: "


@dataclass(frozen=True)
class CaptureSpec:
    """Prediction capture for one release: ``sample`` is a fraction in (0, 1]."""

    sample: float
    inputs: bool = True
    outputs: bool = True
    destination: str | None = None  # s3://, gs://, bq://, az://, a folder, "stdout"; None: default
    drop: tuple[str, ...] = ()
    hash: tuple[str, ...] = ()
    max_file_mb: float = 64.0
    max_total_mb: float = 1024.0

    def __post_init__(self) -> None:
        if not 0 < self.sample <= 1:
            raise ValueError(f"capture sample must be in (0, 1], got {self.sample}")

    @property
    def percent(self) -> int:
        """SageMaker's ``InitialSamplingPercentage`` (an integer 0-100): at least 1, so a
        small fraction still captures (``percent_note`` says so)."""
        return max(1, min(100, round(self.sample * 100)))

    @property
    def percent_note(self) -> str | None:
        """Why ``percent`` is not exactly ``sample`` x 100, or None."""
        exact = self.sample * 100
        if math.isclose(exact, self.percent, abs_tol=1e-9):
            return None
        return (
            f"sample {self.sample} is {exact:g}%; SageMaker takes whole percents: {self.percent}%"
        )

    def to_env(self, folder: str | None = None) -> dict[str, str]:
        """The image's environment for its own capture (Kubernetes, local):
        ``DEPLOYER_CAPTURE``, this spec as JSON; ``destination`` replaced by ``folder`` (a
        path inside the container) when given."""
        data = {k: v for k, v in asdict(self).items() if v is not None}
        data["drop"], data["hash"] = list(self.drop), list(self.hash)
        if folder is not None:
            data["destination"] = folder
        return {CAPTURE_ENV: json.dumps(data, sort_keys=True)}

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> CaptureSpec | None:
        """The spec ``to_env`` wrote, or None when the environment asks for no capture;
        ValueError names DEPLOYER_CAPTURE and what is wrong."""
        text = environ.get(CAPTURE_ENV)
        if not text:
            return None
        try:
            data = json.loads(text)
            data["drop"], data["hash"] = tuple(data.get("drop", ())), tuple(data.get("hash", ()))
            return cls(**data)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{CAPTURE_ENV}: expected a capture spec as JSON ({exc})") from None

    @property
    def rate(self) -> float:
        """Vertex AI's ``samplingRate`` and Azure ML's data collector rate: the fraction."""
        return self.sample


@dataclass(frozen=True)
class CapturedRecord:
    """One captured request, whatever wrote it (the image, SageMaker, Vertex, Azure)."""

    request_id: str
    time: datetime
    rows: list[dict[str, Any]] | None = None
    predictions: list[Any] | None = None
    version: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CapturedRecord:
        """A record as the image writes it (see the module's docstring); ValueError names
        the field that is missing or wrong."""
        if not isinstance(data.get("request_id"), str):
            raise ValueError("request_id: expected a string")
        if not isinstance(data.get("time"), str):
            raise ValueError("time: expected an ISO 8601 string")
        time = parse_time(data["time"])
        rows = data.get("rows")
        if rows is not None and not (
            isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
        ):
            raise ValueError("rows: expected a list of objects")
        predictions = data.get("predictions")
        if predictions is not None and not isinstance(predictions, list):
            raise ValueError("predictions: expected a list")
        known = {"request_id", "time", "rows", "predictions", "version"}
        return cls(
            data["request_id"],
            time,
            rows,
            predictions,
            data.get("version"),
            {k: v for k, v in data.items() if k not in known},
        )

    def to_json(self) -> dict[str, Any]:
        """The image's line format."""
        out: dict[str, Any] = {"request_id": self.request_id, "time": format_time(self.time)}
        if self.version is not None:
            out["version"] = self.version
        if self.rows is not None:
            out["rows"] = self.rows
        if self.predictions is not None:
            out["predictions"] = self.predictions
        return {**out, **self.extra}


def parse_time(text: str) -> datetime:
    """An ISO 8601 time (``Z`` or an offset; naive means UTC) as an aware datetime."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def format_time(value: datetime) -> str:
    """UTC, milliseconds, ``Z``: how every captured record writes its time."""
    utc = value.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@runtime_checkable
class CapturesPredictions(Protocol):
    """Optional capability: a provider reads back what its target captured."""

    def captured(self, since: datetime | None = None) -> Iterator[CapturedRecord]:
        """The target's captured requests at or after ``since`` (None: all), oldest first
        where the store allows; UsageError when the target captures nothing."""
        ...
