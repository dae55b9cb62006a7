"""deployer.yaml: its schema (pydantic models) and loading, with errors that name file,
line and field (worded by deployer.yaml_errors).

Relative paths in the file are relative to the file's folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from deployer.errors import ConfigError, read_config_text
from deployer.flavors import FLAVOR_NAMES
from deployer.gates import parse_gate
from deployer.yaml_errors import describe_errors, line_of, load_yaml

SCHEMA_VERSION = 1
DEFAULT_FILE = "deployer.yaml"
NAME_PATTERN = r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$"
Datatype = Literal[
    "BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "FP16", "FP32", "FP64", "BYTES"
]
FlavorName = Literal[
    "sklearn",
    "onnx",
    "xgboost",
    "python",
    "pytorch",
    "transformers",
    "lightgbm",
    "catboost",
    "mlflow",
    "keras",
]
# the sections whose whole-document checks name their field ("model.path: required ...")
LOCATED = ("model", "serving", "image")
assert set(get_args(FlavorName)) == set(FLAVOR_NAMES), "keep FlavorName in step with the flavours"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorConfig(_Strict):
    """One named tensor: its OIP datatype and shape (first dimension the batch, -1 any)."""

    name: str = Field(min_length=1, max_length=256)
    datatype: Datatype
    shape: tuple[int, ...] = Field(min_length=1, max_length=32)

    @field_validator("shape")
    @classmethod
    def _dims(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(d < -1 or d == 0 for d in value):
            raise ValueError(f"each dimension must be a size > 0 or -1 (any), got {list(value)}")
        return value


class SignatureConfig(_Strict):
    """Declare what a flavour cannot derive (custom predictors, models without n_features_in_,
    a TorchScript model's named tensor inputs)."""

    width: int | None = Field(default=None, gt=0, description="features per row")
    datatype: Datatype | None = Field(default=None, description="input datatype (OIP name)")
    inputs: tuple[TensorConfig, ...] | None = Field(
        default=None, min_length=1, description="named tensor inputs (instead of rows)"
    )
    outputs: tuple[str | TensorConfig, ...] | None = Field(
        default=None, min_length=1, description="output names, or named tensors"
    )
    example: str | None = Field(
        default=None,
        description="instead of inputs: an example batch (.npz of numpy.savez(path, name=array))"
        ", relative to deployer.yaml",
    )

    @model_validator(mode="after")
    def _inputs_or_example(self) -> SignatureConfig:
        if self.inputs and self.example:
            raise ValueError("set inputs or example, not both")
        return self


class ModelConfig(_Strict):
    """The model file and how to load it."""

    path: str | None = Field(
        default=None, description="model file or folder, relative to deployer.yaml"
    )
    flavor: FlavorName | None = Field(
        default=None,
        description="sklearn | onnx | xgboost | lightgbm | catboost | mlflow | pytorch | "
        "transformers | python; detected when unset",
    )
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="flavour options, e.g. transformers: task, top_k, max_new_tokens",
    )

    predictor: str | None = Field(default=None, description="python flavour: 'module:Class'")
    code: tuple[str, ...] = Field(
        default=(), description="python flavour: folders (or single files) to make importable"
    )
    method: str | None = Field(default=None, description="default output, e.g. predict_proba")
    version: str | None = Field(default=None, description="model version; default: sha256 prefix")
    signature: SignatureConfig = SignatureConfig()

    @field_validator("predictor")
    @classmethod
    def _module_class(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[\w.]+:\w+", value):
            raise ValueError(f"expected 'module:Class', got {value!r}")
        return value


class BatchingConfig(_Strict):
    enabled: Literal["auto", "on", "off"] = "auto"
    max_batch_size: int = Field(default=64, ge=1, le=65536)
    max_wait_ms: float = Field(default=0.0, ge=0, le=1000)
    max_concurrent_batches: int = Field(default=1, ge=1, le=256)


class ServingLimitsConfig(_Strict):
    """Bounds the model server puts on clients; unset means the server's default, listed
    with each limit's environment variable in deployer/serving/limits.py."""

    max_header_bytes: int | None = Field(default=None, ge=1024, le=16 * 1024 * 1024)
    max_headers: int | None = Field(default=None, ge=1, le=10_000)
    header_timeout_s: float | None = Field(default=None, gt=0, le=3600)
    body_timeout_s: float | None = Field(default=None, gt=0, le=3600)
    max_response_bytes: int | None = Field(default=None, ge=1024, le=4 * 1024**3)
    max_connections: int | None = Field(default=None, ge=1, le=1_000_000)
    keep_alive_s: float | None = Field(default=None, ge=0, le=3600)

    def settings(self) -> dict[str, Any]:
        """The limits set here, as ServingSettings fields."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ServingConfig(_Strict):
    """How the model server runs, locally and in the image."""

    port: int = Field(default=8080, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    max_body_mb: float = Field(default=6.0, gt=0, le=1024)
    batching: BatchingConfig = BatchingConfig()
    access_log: bool = False
    limits: ServingLimitsConfig = ServingLimitsConfig()


Accelerator = Literal["cpu", "cuda"]
# image.base when none is set, per image.accelerator (see base_for): PyPI's Linux torch
# wheels carry CUDA's user-space libraries (the nvidia-* wheels), so a CUDA image needs no
# CUDA base, only Python 3.11 and the host's driver (NVIDIA container toolkit).
DEFAULT_BASES: dict[str, str] = {"cpu": "python:3.11-slim", "cuda": "python:3.11-slim"}


class ImageConfig(_Strict):
    """The container image (used by ``deployer build``)."""

    base: str = Field(
        default=DEFAULT_BASES["cpu"], description="base image; default per accelerator"
    )
    accelerator: Accelerator = Field(
        default="cpu", description="cpu: CPU-only wheels; cuda: CUDA wheels and GPU runtime env"
    )
    cuda: str | None = Field(
        default=None,
        pattern=r"^1[1-9]\.\d$",
        description="CUDA version of the torch wheels (12.8); default: PyPI's torch build",
    )
    torch: str | None = Field(
        default=None,
        pattern=r"^\d+\.\d+(\.\d+)?$",
        description="torch version for a cuda image; default: the host's, without +cpu",
    )
    platform: str = "linux/amd64"
    python: str = Field(default="3.11", pattern=r"^3\.\d+$")
    requirements: tuple[str, ...] = Field(default=(), description="extra pip requirements")
    repository: str | None = Field(
        default=None, description="image name; default: the project name"
    )

    @model_validator(mode="before")
    @classmethod
    def _default_base(cls, data: Any) -> Any:
        """No image.base: the default of image.accelerator (DEFAULT_BASES)."""
        if isinstance(data, dict) and data.get("base") is None:
            accelerator = data.get("accelerator", "cpu")
            if accelerator in DEFAULT_BASES:  # otherwise the accelerator's own error
                return {**data, "base": DEFAULT_BASES[accelerator]}
        return data

    @model_validator(mode="after")
    def _cuda_only(self) -> ImageConfig:
        for field in ("cuda", "torch"):
            if getattr(self, field) is not None and self.accelerator != "cuda":
                raise ValueError(f"image.{field}: only with image.accelerator: cuda")
        return self


def _gate(text: str) -> str:
    parse_gate(text)  # a ValueError naming the gate and what was expected
    return text


class LiveGatesConfig(_Strict):
    """Live gates: while a canary or linear step bakes, the new version may be worse than
    the old by at most these margins (deployer.providers.live.LiveRules)."""

    max_error_rate_increase: float = Field(default=0.01, ge=0, le=1, description="absolute")
    max_p99_increase: float = Field(default=0.5, ge=0, le=100, description="relative: 0.5 = +50%")
    min_p99_increase_ms: float = Field(default=5.0, ge=0, le=600_000)
    min_requests: int = Field(default=20, ge=1, le=10_000_000)
    interval_seconds: float = Field(default=10.0, gt=0, le=3600)
    require_traffic: bool = False


class ReleaseConfig(_Strict):
    """What a release must meet: gates checked by ``push`` and ``plan`` (deployer.gates),
    and live gates watched while a canary bakes (``live``; absent: no live gates)."""

    gates: tuple[Annotated[str, AfterValidator(_gate)], ...] = Field(
        default=(),
        description='e.g. "f1_macro >= 0.90", "roc_auc >= live - 0.01", "log_loss <= previous"',
    )
    live: LiveGatesConfig | None = None


class RedactConfig(_Strict):
    """Fields removed (``drop``) or replaced by ``sha256:<hex>`` (``hash``) in every captured
    record, before anything is written."""

    drop: tuple[str, ...] = ()
    hash: tuple[str, ...] = ()


class CaptureConfig(_Strict):
    """Prediction capture, one setting for every target (deployer.providers.monitoring
    .CaptureSpec normalises it to each cloud's units)."""

    sample: float = Field(default=0.1, gt=0, le=1, description="share of requests captured")
    inputs: bool = True
    outputs: bool = True
    destination: str | None = Field(
        default=None,
        description="s3://, gs://, bq:// (Vertex), az://, a folder path, or stdout; "
        "default: the target's own",
    )
    redact: RedactConfig = RedactConfig()
    max_file_mb: float = Field(default=64, gt=0, le=4096, description="rotate after")
    max_total_mb: float = Field(default=1024, gt=0, le=1024 * 1024, description="oldest dropped")


class DriftConfig(_Strict):
    """Thresholds over which ``deployer drift`` reports drift (exit 1)."""

    psi: float = Field(default=0.2, gt=0, description="population stability index")
    ks: float = Field(default=0.2, gt=0, le=1, description="Kolmogorov-Smirnov statistic")
    js: float = Field(default=0.2, gt=0, le=1, description="Jensen-Shannon distance")
    chi2_p: float = Field(default=0.01, gt=0, lt=1, description="chi-squared p-value below")
    min_rows: int = Field(default=100, ge=1, description="fewer live rows: no verdict")


class AlertsConfig(_Strict):
    """Alert rules ``deployer alerts render`` writes (and ``push`` applies: ``apply``)."""

    apply: bool = False
    error_rate: float = Field(default=0.05, gt=0, le=1, description="errors / requests")
    window_minutes: int = Field(default=5, ge=1, le=1440)
    p99_ms: float = Field(default=1000, gt=0, description="p99 latency over this")
    drift_psi: float | None = Field(default=None, gt=0, description="default: drift.psi")


class MonitoringConfig(_Strict):
    """Watching the model in production: capture, drift thresholds, alert rules."""

    capture: CaptureConfig | None = None
    drift: DriftConfig = DriftConfig()
    alerts: AlertsConfig = AlertsConfig()


class BatchConfig(_Strict):
    """Defaults of ``deployer batch`` (each one a command-line option too)."""

    format: Literal["csv", "jsonl", "parquet"] | None = Field(
        default=None, description="default: the input's extension"
    )
    label: str | None = Field(default=None, description="a column dropped before predicting")
    keep: tuple[str, ...] = Field(default=(), description="input columns copied to the output")
    rows_per_request: int = Field(default=1000, ge=1, le=1_000_000)
    max_payload_mb: float = Field(default=6.0, gt=0, le=1024)


class TargetConfig(BaseModel):
    """A deploy target. ``provider`` picks the plugin, which validates the other fields."""

    model_config = ConfigDict(extra="allow", frozen=True)

    provider: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")


class ProjectConfig(_Strict):
    """The whole of deployer.yaml."""

    version: Literal[1] = Field(default=1, description="schema version")
    name: str = Field(description="lower-case letters, digits and '-'; names endpoints and images")
    model: ModelConfig
    serving: ServingConfig = ServingConfig()
    image: ImageConfig = ImageConfig()
    release: ReleaseConfig = ReleaseConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    batch: BatchConfig = BatchConfig()
    targets: dict[str, TargetConfig] = Field(default_factory=dict)
    _yaml_root: yaml.Node | None = PrivateAttr(default=None)  # where each field was written

    def line(self, *loc: str | int) -> int | None:
        """The line ``loc`` (or its nearest parent) was written on, when loaded from a file."""
        return line_of(self._yaml_root, loc)

    def describe(self, errors: list[dict[str, Any]]) -> list[str]:
        """pydantic errors located in this file as "line N: field: message"."""
        return describe_errors(errors, self._yaml_root)

    def located(self, *loc: str | int) -> str:
        """ "line N: " for a field, or "" when its line is unknown."""
        line = self.line(*loc)
        return f"line {line}: " if line else ""

    @field_validator("name")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        if not re.fullmatch(NAME_PATTERN, value):
            raise ValueError(
                f"expected 2-40 lower-case letters, digits or '-', starting with a letter "
                f"and not ending with '-' (got {value!r})"
            )
        return value

    @model_validator(mode="after")
    def _model_source(self) -> ProjectConfig:
        model = self.model
        if model.flavor == "python" and not model.predictor:
            raise ValueError("model.predictor: required for the python flavour ('module:Class')")
        if model.flavor != "python" and model.predictor:
            raise ValueError("model.predictor: only the python flavour takes a predictor")
        if model.flavor not in (None, "python") and not model.path:
            raise ValueError(f"model.path: required for the {model.flavor} flavour")
        if model.flavor is None and not model.path:
            raise ValueError("model.path: required (or set model.flavor: python with a predictor)")
        return self


# -- loading ---------------------------------------------------------------------------


def load_config(path: str | Path) -> ProjectConfig:
    """Read and validate a project file; every problem is reported with its line and field."""
    file = Path(path)
    text = read_config_text(file, "create one with: deployer init --model MODEL_FILE")
    return parse_config(text, str(file))


def parse_config(text: str, source: str) -> ProjectConfig:
    """Validate YAML text; ``source`` names it in errors."""
    data, root = load_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError(source, ["expected a mapping with at least 'name' and 'model'"])
    try:
        config = ProjectConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, describe_errors(exc.errors(), root, LOCATED)) from None
    config._yaml_root = root
    return config
