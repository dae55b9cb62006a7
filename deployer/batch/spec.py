"""A batch job's ``BatchSpec`` from the call's options and deployer.yaml's ``batch:``."""

from __future__ import annotations

import os
from collections.abc import Sequence

from deployer.config import BatchConfig
from deployer.errors import UsageError
from deployer.providers.batch import BatchSpec
from deployer.serving.batch_files import InputError, format_of, input_files


def format_for(input: str, given: str | None, default: str | None) -> str:
    """The format asked, else deployer.yaml's, else the input's (a folder: its first
    file's) extension (batch_files.format_of); UsageError naming the input when none says."""
    name = input.rstrip("/")
    try:
        if os.path.isdir(name) and not (given or default):
            name = input_files(name)[0]
        return format_of(name, given or default)
    except InputError as exc:
        raise UsageError(str(exc)) from None


def build_spec(
    config: BatchConfig,
    input: str,
    output: str,
    *,
    format: str | None = None,
    keep: Sequence[str] | None = None,
    label: str | None = None,
    columns: Sequence[str] = (),
    job_name: str | None = None,
) -> BatchSpec:
    """Options given win over deployer.yaml's ``batch:`` defaults."""
    if not input or not output:
        raise UsageError("batch needs --input and --output")
    return BatchSpec(
        input_uri=input,
        output_uri=output,
        format=format_for(input, format, config.format),  # type: ignore[arg-type]
        columns=tuple(columns),
        label=label if label is not None else config.label,
        keep=tuple(keep) if keep is not None else tuple(config.keep),
        rows_per_request=config.rows_per_request,
        max_payload_bytes=int(config.max_payload_mb * 1024 * 1024),
        job_name=job_name,
    )
