"""A batch job in this process: the model loaded as the server loads it, every file scored
by the image's batch runner code (deployer.serving.batch_runner), so reading, shaping,
row order and resuming are the image's own."""

from __future__ import annotations

from collections.abc import Callable

from deployer.errors import DeployerError, MissingDependencyError, UsageError
from deployer.providers.batch import BatchJob, BatchSpec
from deployer.serving.settings import ServingSettings

RowsSeen = Callable[[int], None]


def run(
    settings: ServingSettings,
    spec: BatchSpec,
    job_id: str,
    target: str,
    on_rows: RowsSeen | None = None,
) -> BatchJob:
    """Score ``spec.input_uri`` into ``spec.output_uri``; a finished ``BatchJob``.
    Interrupted (Ctrl-C), the same call again resumes where it stopped."""
    from deployer.serving.batch_files import InputError, MissingPyarrow
    from deployer.serving.batch_runner import (
        BatchOptions,
        FileCounts,
        load,
        outputs_for,
        score_file,
    )

    if "://" in spec.input_uri or "://" in spec.output_uri:
        raise UsageError(
            f"in process, batch reads and writes local paths; got {spec.input_uri!r} -> "
            f"{spec.output_uri!r}"
        )
    options = BatchOptions(spec.format, spec.keep, spec.label, spec.columns, spec.rows_per_request)
    finished = 0

    def seen(counts: FileCounts) -> None:
        if on_rows is not None:
            on_rows(finished + counts.rows)

    results: list[FileCounts] = []
    try:
        files = outputs_for(spec.input_uri, spec.output_uri, options)
        scorer = load(settings)
        for source, target_file, _ in files:
            counts = score_file(scorer, source, target_file, options, seen)
            results.append(counts)
            finished += counts.rows
    except MissingPyarrow as exc:
        raise MissingDependencyError(str(exc), hint="pip install 'deployer[evaluate]'") from None
    except InputError as exc:
        raise UsageError(str(exc)) from None
    except RuntimeError as exc:  # the model failed to load (the server's message)
        raise DeployerError(str(exc)) from None
    rows = sum(c.rows for c in results)
    failed = sum(c.failed for c in results)
    failures = [f"{f['file']}: rows {f['rows']}: {f['error']}" for c in results for f in c.failures]
    return BatchJob(
        job_id,
        target,
        "succeeded",
        spec.output_uri,
        rows_total=rows,
        rows_done=rows - failed,
        rows_failed=failed,
        failures=failures,
        details={
            "through": "in-process",
            "files": [{**c.to_dict(), "failures": len(c.failures)} for c in results],
        },
    )
