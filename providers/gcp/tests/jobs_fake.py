"""The fake Vertex's JobService for batch prediction: CreateBatchPredictionJob,
GetBatchPredictionJob, CancelBatchPredictionJob, each request checked against the v1
reference, and a job that runs the Model's serving container (the fake's runtime: a real
container with vertex_runtime) over the real input files in the fake Cloud Storage.

Like Vertex, for a custom-container Model a job: needs ``dedicated_resources``
(machine type, 1 <= starting_replica_count <= max_replica_count); takes instances as
``jsonl`` or ``csv`` from ``gcs_source.uris`` (``gs://bucket/object``, ``*`` wildcards) and writes
``jsonl`` under ``gcs_destination.output_uri_prefix`` in a new folder
``prediction-<model display name>-<create time>``: ``prediction.results-0000N-of-0000M``
(one JSON line per scored instance: ``{"instance": ..., "prediction": ...}``, or ``"key"``
with ``instance_config.key_field``) and ``prediction.errors_stats-00000-of-00001`` (one
line per error message with its count). The container gets ``{"instances": [...]}`` of at
most ``manual_batch_tuning_parameters.batch_size`` (default 64) instances. CSV: the first
line is the header, each row an array (numbers as numbers); ``instance_config``
``included_fields`` (with ``instance_type: array``: that order), ``excluded_fields`` and
``key_field`` select the fields. Job states: QUEUED, RUNNING, then SUCCEEDED,
PARTIALLY_SUCCEEDED (some instances failed: ``partial_failures``), FAILED (``error``) or,
after a cancel, CANCELLING then CANCELLED. ``hold()`` keeps new jobs RUNNING until set;
``finished[name]`` is set when a job ends.
"""

from __future__ import annotations

import csv
import datetime
import fnmatch
import io
import itertools
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.cloud.aiplatform_v1 import types
from google.protobuf import empty_pb2
from google.rpc import status_pb2

State = types.JobState
_JOB = re.compile(r"^projects/[^/]+/locations/[^/]+/batchPredictionJobs/\d+$")
_PARENT = re.compile(r"^projects/[^/]+/locations/[^/]+$")
_MODEL = re.compile(r"^projects/[^/]+/locations/[^/]+/models/[^/@]+(@[^/]+)?$")
_GCS = re.compile(r"^gs://([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])/(.+)$")
_PREFIX = re.compile(r"^gs://([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])(/.*)?$")
INPUT_FORMATS = ("jsonl", "csv", "tf-record", "tf-record-gzip", "file-list", "bigquery")
OUTPUT_FORMATS = ("jsonl", "bigquery")
DEFAULT_BATCH_SIZE = 64
MAX_PARTIAL_FAILURES = 20


class JobAbort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message: str) -> JobAbort:
    return JobAbort(grpc.StatusCode.INVALID_ARGUMENT, message)


def validate(request: Any) -> None:
    """CreateBatchPredictionJob against the v1 reference (raises JobAbort)."""
    if not _PARENT.match(request.parent):
        raise _invalid(f"Invalid parent {request.parent!r}.")
    job = request.batch_prediction_job
    if not job.display_name or len(job.display_name) > 128:
        raise _invalid("batch_prediction_job.display_name is required, at most 128 characters.")
    if not _MODEL.match(job.model):
        raise _invalid(f"Invalid resource name {job.model!r} in batch_prediction_job.model.")
    source = job.input_config
    if source.instances_format not in INPUT_FORMATS:
        raise _invalid(f"input_config.instances_format {source.instances_format!r} is invalid.")
    if not source.gcs_source.uris:
        raise _invalid("input_config.gcs_source.uris is required.")
    for uri in source.gcs_source.uris:
        if not _GCS.match(uri):
            raise _invalid(f"input_config.gcs_source.uris: {uri!r} is not gs://bucket/object.")
    out = job.output_config
    if out.predictions_format not in OUTPUT_FORMATS:
        raise _invalid(f"output_config.predictions_format {out.predictions_format!r} is invalid.")
    if not _PREFIX.match(out.gcs_destination.output_uri_prefix):
        raise _invalid(
            "output_config.gcs_destination.output_uri_prefix must be gs://bucket[/path]."
        )
    resources = job.dedicated_resources
    if not resources.machine_spec.machine_type:
        raise _invalid("dedicated_resources.machine_spec.machine_type is required.")
    low, high = resources.starting_replica_count, resources.max_replica_count
    if low < 1 or (high and high < low):
        raise _invalid(
            "dedicated_resources: need 1 <= starting_replica_count <= max_replica_count."
        )
    config = job.instance_config
    if config.included_fields and config.excluded_fields:
        raise _invalid("instance_config: included_fields and excluded_fields are exclusive.")
    if config.instance_type not in ("", "object", "array"):
        raise _invalid(f"instance_config.instance_type {config.instance_type!r} is invalid.")
    if config.instance_type == "object" and source.instances_format == "csv":
        raise _invalid("instance_config.instance_type object does not apply to csv.")
    if job.manual_batch_tuning_parameters.batch_size < 0:
        raise _invalid("manual_batch_tuning_parameters.batch_size must be positive.")
    for key, value in job.labels.items():
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", key) or not re.fullmatch(
            r"[a-z0-9_-]{0,63}", value
        ):
            raise _invalid(f"batch_prediction_job.labels: invalid label {key!r}={value!r}.")


class FakeJobs:
    """Batch prediction jobs of one FakeVertex (``owner``: its models, runtime and lock)."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self.gcs: Any = None  # the FakeGcs the jobs read and write (tests set it)
        self.reset()

    def reset(self) -> None:
        gate = getattr(self, "gate", None)
        if gate is not None:
            gate.set()
        self.jobs: dict[str, Any] = {}
        self.finished: dict[str, threading.Event] = {}
        self.gate: threading.Event | None = None
        self.cancelled: set[str] = set()
        self._ids = itertools.count(4001)

    def hold(self) -> threading.Event:
        """Jobs started from now on stay RUNNING until the returned event is set."""
        self.gate = threading.Event()
        return self.gate

    def handlers(
        self, wrap: Callable[[str, Callable[[Any], Any]], Callable[[Any, Any], Any]]
    ) -> grpc.GenericRpcHandler:
        methods = {
            "CreateBatchPredictionJob": (
                self.create,
                types.CreateBatchPredictionJobRequest,
                types.BatchPredictionJob,
            ),
            "GetBatchPredictionJob": (
                self.get,
                types.GetBatchPredictionJobRequest,
                types.BatchPredictionJob,
            ),
            "CancelBatchPredictionJob": (
                self.cancel,
                types.CancelBatchPredictionJobRequest,
                None,
            ),
        }
        table = {
            name: grpc.unary_unary_rpc_method_handler(
                wrap(name, function),
                request_deserializer=request_type.deserialize,
                response_serializer=(
                    response_type.serialize
                    if response_type is not None
                    else lambda message: message.SerializeToString()
                ),
            )
            for name, (function, request_type, response_type) in methods.items()
        }
        return grpc.method_handlers_generic_handler("google.cloud.aiplatform.v1.JobService", table)

    # -- RPCs ---------------------------------------------------------------------------

    def create(self, request: Any) -> Any:
        validate(request)
        owner = self.owner
        with owner.lock:
            model = owner.models.get(request.batch_prediction_job.model.split("@")[0])
            if model is None:
                raise JobAbort(
                    grpc.StatusCode.NOT_FOUND,
                    f"Model {request.batch_prediction_job.model} not found.",
                )
            job = types.BatchPredictionJob.deserialize(
                types.BatchPredictionJob.serialize(request.batch_prediction_job)
            )
            job.name = f"{request.parent}/batchPredictionJobs/{next(self._ids)}"
            job.state = State.JOB_STATE_QUEUED
            job.create_time = job.update_time = _now()
            self.jobs[job.name] = job
            self.finished[job.name] = threading.Event()
            model = types.Model.deserialize(types.Model.serialize(model))
            gate, runtime = self.gate, owner.runtime
            answer = _copy(job)  # as created: the job starts right after
        threading.Thread(
            target=self._run, args=(job.name, model, runtime, gate), daemon=True
        ).start()
        return answer

    def get(self, request: Any) -> Any:
        if not _JOB.match(request.name):
            raise _invalid(f"Invalid resource name {request.name!r}.")
        with self.owner.lock:
            job = self.jobs.get(request.name)
            if job is None:
                raise JobAbort(grpc.StatusCode.NOT_FOUND, f"Job {request.name} not found.")
            return _copy(job)

    def cancel(self, request: Any) -> Any:
        if not _JOB.match(request.name):
            raise _invalid(f"Invalid resource name {request.name!r}.")
        with self.owner.lock:
            job = self.jobs.get(request.name)
            if job is None:
                raise JobAbort(grpc.StatusCode.NOT_FOUND, f"Job {request.name} not found.")
            if job.state in _ENDED:
                raise JobAbort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Job {request.name} is already in state {job.state.name}.",
                )
            job.state = State.JOB_STATE_CANCELLING
            self.cancelled.add(request.name)
        return empty_pb2.Empty()

    # -- the job ------------------------------------------------------------------------

    def _set(self, name: str, **fields: Any) -> Any:
        with self.owner.lock:
            job = self.jobs[name]
            for key, value in fields.items():
                setattr(job, key, value)
            job.update_time = _now()
            return job

    def _run(self, name: str, model: Any, runtime: Any, gate: threading.Event | None) -> None:
        deployed = f"batch-{name.rsplit('/', 1)[1]}"
        started = False
        try:
            self._set(name, state=State.JOB_STATE_RUNNING, start_time=_now())
            job = self.get(types.GetBatchPredictionJobRequest(name=name))
            instances, keys = self._instances(job)
            runtime.start(deployed, model)
            started = True
            if gate is not None:
                gate.wait()
            self._score(name, job, model, runtime, deployed, instances, keys)
        except Exception as exc:  # the job fails with the reason, as Vertex's does
            self._set(
                name,
                state=State.JOB_STATE_FAILED,
                error=status_pb2.Status(code=9, message=str(exc)),
                end_time=_now(),
            )
        finally:
            if started:
                runtime.stop(deployed)
            self.finished[name].set()

    def _instances(self, job: Any) -> tuple[list[Any], list[Any]]:
        """The instances sent to the model, and each one's key (or its original instance)."""
        config = job.instance_config
        instances, keys = [], []
        for uri in job.input_config.gcs_source.uris:
            match = _GCS.match(uri)
            assert match is not None
            bucket = self.gcs.objects.get(match.group(1), {})
            names = sorted(fnmatch.filter(bucket, match.group(2)))  # "*" wildcards
            if not names:
                raise RuntimeError(f"Failed to read input file {uri}: no such object.")
            for record in self._read(bucket, names, job.input_config.instances_format):
                key = record.get(config.key_field) if config.key_field else record
                instances.append(_shape(record, config, job.input_config.instances_format))
                keys.append(key)
        return instances, keys

    @staticmethod
    def _read(bucket: dict[str, bytes], names: list[str], fmt: str) -> Iterator[Any]:
        for name in names:
            yield from _records(bucket[name].decode(), fmt)

    def _score(
        self,
        name: str,
        job: Any,
        model: Any,
        runtime: Any,
        deployed: str,
        instances: list[Any],
        keys: list[Any],
    ) -> None:
        size = job.manual_batch_tuning_parameters.batch_size or DEFAULT_BATCH_SIZE
        key_name = "key" if job.instance_config.key_field else "instance"
        results: list[str] = []
        errors: Counter[str] = Counter()
        done = failed = 0
        for start in range(0, len(instances), size):
            if name in self.cancelled:
                break
            chunk = instances[start : start + size]
            body = json.dumps({"instances": chunk}).encode()
            status, data, _ = runtime.predict(deployed, body, "application/json")
            predictions = _predictions(status, data, len(chunk))
            if isinstance(predictions, str):
                errors[predictions] += len(chunk)
                failed += len(chunk)
            else:
                for key, prediction in zip(keys[start : start + size], predictions, strict=True):
                    results.append(json.dumps({key_name: key, "prediction": prediction}))
                done += len(chunk)
            self._set(
                name,
                completion_stats=types.CompletionStats(
                    successful_count=done,
                    failed_count=failed,
                    incomplete_count=len(instances) - done - failed,
                ),
            )
        folder = self._write(job, model, results, errors)
        outcome: dict[str, Any] = {
            "output_info": types.BatchPredictionJob.OutputInfo(gcs_output_directory=folder),
            "end_time": _now(),
        }
        if name in self.cancelled:
            outcome["state"] = State.JOB_STATE_CANCELLED
        elif failed and not done:
            outcome["state"] = State.JOB_STATE_FAILED
            outcome["error"] = status_pb2.Status(code=3, message=next(iter(errors)))
        elif failed:
            outcome["state"] = State.JOB_STATE_PARTIALLY_SUCCEEDED
        else:
            outcome["state"] = State.JOB_STATE_SUCCEEDED
        if errors:
            outcome["partial_failures"] = [
                status_pb2.Status(code=3, message=f"{message} ({count} instances)")
                for message, count in list(errors.items())[:MAX_PARTIAL_FAILURES]
            ]
        self._set(name, **outcome)

    def _write(self, job: Any, model: Any, results: list[str], errors: Counter[str]) -> str:
        """The output folder with its results and errors_stats files; returns its URI."""
        match = _PREFIX.match(job.output_config.gcs_destination.output_uri_prefix)
        assert match is not None
        bucket, path = match.group(1), (match.group(2) or "").strip("/")
        created = job.create_time.strftime("%Y_%m_%dT%H_%M_%S_") + (
            f"{job.create_time.microsecond // 1000:03d}Z"
        )
        folder = "/".join(p for p in (path, f"prediction-{model.display_name}-{created}") if p)
        store = self.gcs.objects.setdefault(bucket, {})
        shards = max(1, (len(results) + 999) // 1000)
        for index in range(shards):
            lines = results[index * 1000 : (index + 1) * 1000]
            text = "".join(line + "\n" for line in lines)
            store[f"{folder}/prediction.results-{index:05d}-of-{shards:05d}"] = text.encode()
        stats = "".join(f"({json.dumps(m)}, {n})\n" for m, n in errors.items())
        store[f"{folder}/prediction.errors_stats-00000-of-00001"] = stats.encode()
        return f"gs://{bucket}/{folder}"


_ENDED = {
    State.JOB_STATE_SUCCEEDED,
    State.JOB_STATE_FAILED,
    State.JOB_STATE_CANCELLED,
    State.JOB_STATE_PARTIALLY_SUCCEEDED,
}


def _records(text: str, fmt: str) -> list[Any]:
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        return [{k: _number(v) for k, v in row.items()} for row in reader]
    raise RuntimeError(f"the fake reads jsonl and csv only, not {fmt}")


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _shape(record: Any, config: Any, fmt: str) -> Any:
    """The instance Vertex sends for ``record`` (a JSONL line or a CSV row as an object):
    an array for CSV or ``instance_type: array``, else the object (fields selected)."""
    if not isinstance(record, dict):
        return record
    excluded = {*config.excluded_fields, config.key_field}
    fields = list(config.included_fields) or [k for k in record if k not in excluded]
    missing = [f for f in fields if f not in record]
    if missing:
        raise RuntimeError(f"Instance is missing included fields {missing}.")
    if fmt == "csv" or config.instance_type == "array":
        return [record[f] for f in fields]
    return {f: record[f] for f in fields}


def _predictions(status: int, data: bytes, count: int) -> list[Any] | str:
    """The container's predictions, or the error message Vertex records."""
    if status != 200:
        return f"Prediction request failed: {status} {data.decode(errors='replace')[:200]}"
    try:
        predictions = json.loads(data)["predictions"]
    except (ValueError, KeyError, TypeError):
        return 'Prediction response is not {"predictions": [...]}'
    if not isinstance(predictions, list) or len(predictions) != count:
        return f"Expected {count} predictions"
    return predictions


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _copy(message: Any) -> Any:
    return type(message).deserialize(type(message).serialize(message))
