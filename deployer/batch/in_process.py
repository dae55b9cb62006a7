"""A batch job run by this process: every file read, shaped and written by the image's
batch runner code (deployer.serving.batch_runner), so reading, shaping, row order and
resuming are the image's own. The predictions come from the model loaded here as the
server loads it (``in_process``), or from a running deployment (deployer.batch.endpoint)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from deployer.errors import DeployerError, MissingDependencyError, UsageError
from deployer.providers.batch import BatchJob, BatchSpec
from deployer.serving.settings import ServingSettings

if TYPE_CHECKING:
    from deployer.serving.batch_runner import ScoresRows

RowsSeen = Callable[[int], None]
IN_PROCESS = "in-process"


def run(
    settings: ServingSettings,
    spec: BatchSpec,
    job_id: str,
    target: str,
    on_rows: RowsSeen | None = None,
) -> BatchJob:
    """Score ``spec.input_uri`` into ``spec.output_uri`` with the model loaded here; a
    finished ``BatchJob``. Interrupted (Ctrl-C), the same call again resumes."""
    from deployer.serving.batch_runner import load

    return score(lambda: load(settings), spec, job_id, target, IN_PROCESS, on_rows)


def score(
    scorer_of: Callable[[], ScoresRows],
    spec: BatchSpec,
    job_id: str,
    target: str,
    through: str,
    on_rows: RowsSeen | None = None,
) -> BatchJob:
    """Score ``spec`` here with the scorer ``scorer_of()`` makes (once the input is known
    to be readable); ``through`` says where the predictions came from."""
    from deployer.serving.batch_files import InputError, MissingPyarrow
    from deployer.serving.batch_runner import (
        BatchOptions,
        FileCounts,
        ScorerUnavailable,
        outputs_for,
        score_file,
    )

    if "://" in spec.input_uri or "://" in spec.output_uri:
        raise UsageError(
            f"{through}: batch here reads and writes local paths; got {spec.input_uri!r} -> "
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
        scorer = scorer_of()
        for source, target_file, _ in files:
            counts = score_file(scorer, source, target_file, options, seen)
            results.append(counts)
            finished += counts.rows
    except MissingPyarrow as exc:
        raise MissingDependencyError(str(exc), hint="pip install 'deployer[evaluate]'") from None
    except InputError as exc:
        raise UsageError(str(exc)) from None
    except ScorerUnavailable as exc:  # the parts scored so far are kept: a re-run resumes
        raise DeployerError(str(exc), hint="the same command again resumes") from None
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
            "through": through,
            "files": [{**c.to_dict(), "failures": len(c.failures)} for c in results],
        },
    )
