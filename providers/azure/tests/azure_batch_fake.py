"""The fake Azure ML's batch endpoints: ARM resources, the invoke call, the job, and a
runtime that runs the batch deployment's scoring script as Azure's batch driver does.

ARM (checked against azure-ai-ml's REST models, azure_rest_check, plus the documented
values): batch endpoints and deployments (compute an existing cluster, instance count
1-50, ``miniBatchSize``/``maxConcurrencyPerInstance`` >= 1, ``retrySettings.maxRetries``
>= 0 and a positive timeout, ``errorThreshold`` >= -1, ``outputAction`` SummaryOnly or
AppendRow, an existing environment and code version holding the scoring script), code
versions, compute clusters, jobs (GET, ``cancel``), and the run history's run details
(the job's error, its log files) behind the workspace's discovery URL.

Invoke: POST ``<scoringUri>`` of a batch endpoint (Bearer token), body checked (an input
``UriFile``/``UriFolder`` with a uri, the ``score`` output with a datastore path). The job
then runs in a thread: the input files come from Azurite (the datastore's container),
mini-batches of ``miniBatchSize`` files go to the runtime (``init()`` once, ``run(paths)``
each, a failing mini-batch retried ``maxRetries`` times), files missing from ``run``'s
answer count as failed, the output folder (and with AppendRow ``outputFileName`` holding
every answer line) is uploaded to the output path, the job ends Completed, or Failed past
``errorThreshold`` with a message naming the failed files and the first error.
"""

from __future__ import annotations

import contextlib
import datetime
import re
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from azure_rest_check import MAX_INSTANCES, _deserialize, model_problems

PATH = re.compile(r"^azureml://datastores/(?P<ds>[^/]+)/paths/(?P<path>.*)$")
RUNNING = ("NotStarted", "Queued", "Preparing", "Running", "Finalizing", "CancelRequested")


@dataclass
class MiniBatchResult:
    """What one ``run()`` answered (lines), or its error."""

    answered: list[str] = field(default_factory=list)
    error: str | None = None


class BatchRuntime(Protocol):
    def run(
        self,
        deployment: dict[str, Any],
        code: Path,
        inputs: list[Path],
        output: Path,
        mini_batches: list[list[Path]],
        max_retries: int,
        log: list[str],
        cancelled: threading.Event,
    ) -> list[MiniBatchResult]: ...


class StubBatchRuntime:
    """Scores like a model answering 0 for each row: one ``<file>.csv`` per input with a
    ``prediction`` column; files named in ``failing`` make their mini-batch raise."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.gate: threading.Event | None = None  # hold the job running until set

    def run(
        self,
        deployment: dict[str, Any],
        code: Path,
        inputs: list[Path],
        output: Path,
        mini_batches: list[list[Path]],
        max_retries: int,
        log: list[str],
        cancelled: threading.Event,
    ) -> list[MiniBatchResult]:
        assert (code / "score.py").is_file(), "the code asset holds no score.py"
        results = []
        for batch in mini_batches:
            if self.gate is not None:
                while not (self.gate.wait(0.05) or cancelled.is_set()):
                    pass
            if cancelled.is_set():
                break
            bad = [p.name for p in batch if p.name in self.failing]
            if bad:
                log.extend(f"run() failed (attempt {i + 1})" for i in range(max_retries + 1))
                results.append(MiniBatchResult(error=f"ValueError: cannot score {bad[0]}"))
                continue
            answered = []
            for path in batch:
                rows = path.read_text().splitlines()[1:]
                (output / path.name).write_text("prediction\n" + "0\n" * len(rows))
                answered.append(f"{path.name},{len(rows)},{len(rows)}")
            results.append(MiniBatchResult(answered))
        return results


@dataclass
class Job:
    name: str
    endpoint: str
    deployment: str
    body: dict[str, Any]
    status: str = "NotStarted"
    error: dict[str, str] | None = None
    log: list[str] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    failed_files: list[str] = field(default_factory=list)


class BatchService:
    """State and handlers; ``fake`` is the FakeAzureML (lock, LROs, storage, scoring URL)."""

    def __init__(self, fake: Any, runtime: BatchRuntime | None = None) -> None:
        self.fake = fake
        self.runtime: BatchRuntime = runtime or StubBatchRuntime()
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.codes: dict[tuple[str, str], dict[str, Any]] = {}
        self.computes: set[str] = {"cpu-cluster"}
        self.jobs: dict[str, Job] = {}
        self.invocations: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.threads: list[threading.Thread] = []

    @property
    def ws(self) -> str:
        return str(self.fake.workspace_id)

    def close(self) -> None:
        for job in self.jobs.values():
            job.cancelled.set()
        for thread in self.threads:
            thread.join(timeout=120)

    # -- ARM ------------------------------------------------------------------------------

    def refuse(self, problems: list[str]) -> tuple[int, dict[str, Any]]:
        self.refused.extend(problems)
        return 400, _error("BadArgument", "; ".join(problems))

    def put_endpoint(self, body: Any, ep: str) -> tuple[int, Any, dict[str, str]]:
        from azure.ai.ml._restclient.arm_ml_service.models import BatchEndpoint

        model, problems = _deserialize(BatchEndpoint, body, "batchEndpoint")
        problems += model_problems(model, "batchEndpoint") if model is not None else []
        if problems:
            return (*self.refuse(problems), {})
        existing = self.endpoints.get(ep)
        resource = {
            "id": f"{self.ws}/batchEndpoints/{ep}",
            "name": ep,
            "type": "Microsoft.MachineLearningServices/workspaces/batchEndpoints",
            "location": "westeurope",
            "tags": body.get("tags") or {},
            "properties": {
                **body["properties"],
                "scoringUri": f"{self.fake.scoring_url}/batch/{ep}/jobs",
                "swaggerUri": f"{self.fake.scoring_url}/batch/{ep}/swagger.json",
                "provisioningState": "Succeeded",
            },
        }
        self.endpoints[ep] = resource
        operation = self.fake._start_operation(lambda: None)
        return 201 if existing is None else 200, resource, self.fake._lro_headers(operation)

    def get_endpoint(self, ep: str) -> tuple[int, Any]:
        found = self.endpoints.get(ep)
        if found is None:
            return 404, _error("ResourceNotFound", f"Batch endpoint '{ep}' was not found.")
        return 200, found

    def put_deployment(self, body: Any, ep: str, d: str) -> tuple[int, Any, dict[str, str]]:
        problems = self.deployment_problems(body)
        if problems:
            return (*self.refuse(problems), {})
        if ep not in self.endpoints:
            return 404, _error("ResourceNotFound", f"Batch endpoint '{ep}' was not found."), {}
        existing = self.deployments.get((ep, d))
        resource = {
            "id": f"{self.ws}/batchEndpoints/{ep}/deployments/{d}",
            "name": d,
            "type": "Microsoft.MachineLearningServices/workspaces/batchEndpoints/deployments",
            "location": "westeurope",
            "tags": body.get("tags") or {},
            "properties": {**body["properties"], "provisioningState": "Succeeded"},
        }
        self.deployments[(ep, d)] = resource
        operation = self.fake._start_operation(lambda: None)
        return 201 if existing is None else 200, resource, self.fake._lro_headers(operation)

    def get_deployment(self, ep: str, d: str) -> tuple[int, Any]:
        found = self.deployments.get((ep, d))
        if found is None:
            return 404, _error("ResourceNotFound", f"Deployment '{d}' was not found.")
        return 200, found

    def deployment_problems(self, body: Any) -> list[str]:
        from azure.ai.ml._restclient.arm_ml_service.models import BatchDeployment

        where = "batchDeployment.properties"
        model, problems = _deserialize(BatchDeployment, body, "batchDeployment")
        if model is None:
            return problems
        problems += model_problems(model, "batchDeployment")
        props = body.get("properties") or {}
        compute = str(props.get("compute") or "")
        if compute.rsplit("/", 1)[-1] not in self.computes or "/computes/" not in compute:
            problems.append(f"{where}.compute: {compute!r} is not a cluster of the workspace")
        count = (props.get("resources") or {}).get("instanceCount", 1)
        if not 1 <= int(count) <= MAX_INSTANCES:
            problems.append(f"{where}.resources.instanceCount: {count} is not within 1-50")
        for name in ("miniBatchSize", "maxConcurrencyPerInstance"):
            if name in props and int(props[name]) < 1:
                problems.append(f"{where}.{name}: {props[name]} is below 1")
        retry = props.get("retrySettings") or {}
        if int(retry.get("maxRetries", 0)) < 0:
            problems.append(f"{where}.retrySettings.maxRetries: below 0")
        if "timeout" in retry and _seconds(retry["timeout"]) <= 0:
            problems.append(f"{where}.retrySettings.timeout: {retry['timeout']} is not positive")
        if int(props.get("errorThreshold", -1)) < -1:
            problems.append(f"{where}.errorThreshold: {props['errorThreshold']} is below -1")
        action = props.get("outputAction", "AppendRow")
        if action not in ("SummaryOnly", "AppendRow"):
            problems.append(f"{where}.outputAction: {action!r} is not SummaryOnly or AppendRow")
        if self.fake._environment_of(props.get("environmentId", "")) is None:
            problems.append(f"{where}.environmentId: {props.get('environmentId')!r} not found")
        code = props.get("codeConfiguration") or {}
        found = re.search(r"/codes/([^/]+)/versions/([^/]+)$", str(code.get("codeId")))
        if found is None or (found[1], found[2]) not in self.codes:
            problems.append(f"{where}.codeConfiguration.codeId: {code.get('codeId')!r} not found")
        elif not code.get("scoringScript"):
            problems.append(f"{where}.codeConfiguration.scoringScript: required")
        return problems

    def put_code(self, body: Any, name: str, version: str) -> tuple[int, Any]:
        from azure.ai.ml._restclient.arm_ml_service.models import CodeVersion

        model, problems = _deserialize(CodeVersion, body, "codeVersion")
        problems += model_problems(model, "codeVersion") if model is not None else []
        if not str(((body or {}).get("properties") or {}).get("codeUri", "")).startswith("http"):
            problems.append("codeVersion.properties.codeUri: expected the blob folder's URL")
        if problems:
            return self.refuse(problems)
        created = (name, version) not in self.codes
        self.codes[(name, version)] = {
            "id": f"{self.ws}/codes/{name}/versions/{version}",
            "name": version,
            "type": "Microsoft.MachineLearningServices/workspaces/codes/versions",
            "properties": {**body["properties"], "provisioningState": "Succeeded"},
        }
        return 201 if created else 200, self.codes[(name, version)]

    def get_code(self, name: str, version: str) -> tuple[int, Any]:
        found = self.codes.get((name, version))
        if found is None:
            return 404, _error("ResourceNotFound", f"code {name}:{version} not found")
        return 200, found

    def get_compute(self, name: str) -> tuple[int, Any]:
        if name not in self.computes:
            return 404, _error("ResourceNotFound", f"compute {name} not found")
        return 200, {
            "id": f"{self.ws}/computes/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/computes",
            "location": "westeurope",
            "properties": {
                "computeType": "AmlCompute",
                "provisioningState": "Succeeded",
                "properties": {"vmSize": "STANDARD_DS3_V2", "scaleSettings": {"maxNodeCount": 4}},
            },
        }

    def get_job(self, name: str) -> tuple[int, Any]:
        job = self.jobs.get(name)
        if job is None:
            return 404, _error("UserError", f"job {name} not found")
        output = _output(job.body)
        return 200, {
            "id": f"{self.ws}/jobs/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/jobs",
            "properties": {
                "jobType": "Pipeline",
                "status": job.status,
                "displayName": name,
                "experimentName": job.endpoint,
                "properties": {"azureml.batchrun": "true"},
                "tags": {},
                "inputs": {},
                "jobs": {},
                "settings": {},
                "outputs": {"score": {"jobOutputType": "uri_folder", "uri": output}},
                "services": {
                    "Studio": {
                        "jobServiceType": "Studio",
                        "endpoint": f"https://ml.azure.com/runs/{name}",
                    }
                },
            },
        }

    def cancel_job(self, name: str) -> tuple[int, Any, dict[str, str]]:
        job = self.jobs.get(name)
        if job is None:
            return 404, _error("UserError", f"job {name} not found"), {}
        if job.status in RUNNING:
            job.status = "CancelRequested"
            job.cancelled.set()
        operation = self.fake._start_operation(lambda: None)
        return 202, None, self.fake._lro_headers(operation, location=True)

    def run_details(self, name: str) -> tuple[int, Any]:
        job = self.jobs.get(name)
        if job is None:
            return 404, _error("UserError", f"run {name} not found")
        body: dict[str, Any] = {
            "runId": name,
            "status": job.status,
            "logFiles": {
                "logs/azureml/job_result.txt": f"{self.fake.scoring_url}/logs/{name}/job",
                "logs/user/stdout/driver.txt": f"{self.fake.scoring_url}/logs/{name}/driver",
            },
        }
        if job.error:
            body["error"] = {"error": job.error}
        return 200, body

    def log_text(self, name: str, which: str) -> str | None:
        job = self.jobs.get(name)
        if job is None:
            return None
        if which == "job":
            return f"status: {job.status}\nfailed files: {', '.join(job.failed_files)}\n"
        return "\n".join(job.log) + "\n"

    # -- invoke ---------------------------------------------------------------------------

    def invoke(self, ep: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        """POST to a batch endpoint's scoring URI: start a job."""
        if not headers.get("authorization", "").startswith("Bearer "):
            return 401, {"message": "a Bearer token is required"}
        if ep not in self.endpoints:
            return 404, {"message": f"batch endpoint {ep} not found"}
        self.invocations.append(body)
        problems = self.invoke_problems(body)
        if problems:
            self.refused.extend(problems)
            return 400, _error("UserError", "; ".join(problems))
        deployment = headers.get("azureml-model-deployment")
        if (ep, deployment or "") not in self.deployments:
            return 400, _error("UserError", f"deployment {deployment!r} not found")
        properties = body["properties"]
        name = properties.get("name") or f"batchjob-{uuid.uuid4()}"
        if name in self.jobs:
            return 409, _error("UserError", f"a job named {name} already exists")
        job = Job(name, ep, str(deployment), body)
        self.jobs[name] = job
        thread = threading.Thread(target=self._run, args=(job,), daemon=True)
        self.threads.append(thread)
        thread.start()
        return 200, {
            "id": f"{self.ws}/jobs/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/batchEndpoints/jobs",
            "properties": {"status": job.status},
        }

    def invoke_problems(self, body: Any) -> list[str]:
        properties = (body or {}).get("properties") if isinstance(body, dict) else None
        if not isinstance(properties, dict):
            return ["batchJob.properties: required"]
        problems = []
        data = properties.get("inputData") or {}
        kinds = [k for k in data if k in ("UriFile", "UriFolder")]
        if len(kinds) != 1:
            problems.append(f"batchJob.properties.inputData: expected UriFile or UriFolder: {data}")
        elif not (data[kinds[0]] or {}).get("uri"):
            problems.append(f"batchJob.properties.inputData.{kinds[0]}.uri: required")
        outputs = properties.get("outputData") or {}
        unknown = sorted(set(outputs) - {"score"})
        if unknown:
            problems.append(f"batchJob.properties.outputData: a model deployment has only the "
                            f"output 'score', got {unknown}")  # fmt: skip
        uri = str((outputs.get("score") or {}).get("uri", ""))
        if outputs and not PATH.match(uri):
            problems.append(f"batchJob.properties.outputData.score.uri: {uri!r} is not a "
                            "datastore path")  # fmt: skip
        return problems

    def _run(self, job: Job) -> None:
        try:
            self._execute(job)
        except Exception as exc:  # a bug in the fake or the runtime: the job fails with it
            job.error = {"code": "SystemError", "message": f"{type(exc).__name__}: {exc}"}
            job.status = "Failed"

    def _execute(self, job: Job) -> None:
        props = self.deployments[(job.endpoint, job.deployment)]["properties"]
        data = job.body["properties"]["inputData"]
        kind = "UriFile" if "UriFile" in data else "UriFolder"
        source = PATH.match(self._data_uri(data[kind]["uri"]))
        sink = _output(job.body)
        job.status = "Preparing"
        with tempfile.TemporaryDirectory(prefix="azbatch-") as tmp:
            root = Path(tmp)
            for sub in ("code", "input", "output"):
                (root / sub).mkdir()
                (root / sub).chmod(0o777)
            self._download_code(props["codeConfiguration"]["codeId"], root / "code")
            if source is None:
                raise ValueError(f"input {data[kind]['uri']} is not a datastore path")
            files = self._download(source["ds"], source["path"], kind, root / "input")
            if not files:
                job.status, job.error = (
                    "Failed",
                    {
                        "code": "UserError",
                        "message": f"No input files found at {data[kind]['uri']}",
                    },
                )
                return
            size = int(props.get("miniBatchSize") or 10)
            batches = [files[i : i + size] for i in range(0, len(files), size)]
            job.status = "Running"
            retries = int((props.get("retrySettings") or {}).get("maxRetries", 3))
            environment = self.fake._environment_of(props["environmentId"])
            running = {**self.deployments[(job.endpoint, job.deployment)]}
            running["image"] = environment["properties"]["image"]
            results = self.runtime.run(
                running, root / "code", files, root / "output", batches, retries, job.log,
                job.cancelled,
            )  # fmt: skip
            if job.cancelled.is_set():
                job.status = "Canceled"
                return
            answered: list[str] = []
            first_error = None
            for batch, result in zip(batches, results, strict=False):
                names = {line.split(",", 1)[0] for line in result.answered}
                job.failed_files += [p.name for p in batch if p.name not in names]
                answered += result.answered
                first_error = first_error or result.error
            if props.get("outputAction", "AppendRow") == "AppendRow":
                out_name = props.get("outputFileName") or "predictions.csv"
                (root / "output" / out_name).write_text("".join(f"{a}\n" for a in answered))
            target = PATH.match(sink)
            if target is None:  # Azure's default: the workspace's blob store, under the job
                target = PATH.match(f"azureml://datastores/workspaceblobstore/paths/{job.name}/")
            assert target is not None
            self._upload(target["ds"], target["path"], root / "output")
            threshold = int(props.get("errorThreshold", -1))
            if job.failed_files and threshold != -1 and len(job.failed_files) > threshold:
                message = (
                    f"{len(job.failed_files)} of {len(files)} input files failed, more than "
                    f"error_threshold {threshold}: {', '.join(job.failed_files)}"
                )
                if first_error:
                    message += f". First error: {first_error}"
                job.error = {"code": "UserError", "message": message}
                job.status = "Failed"
                return
            job.status = "Completed"

    def _data_uri(self, uri: str) -> str:
        """A data asset's ARM id as its datastore path; anything else as it is."""
        found = re.search(r"/data/([^/]+)/versions/([^/]+)$", uri)
        asset = self.fake.capture.data.get((found[1], found[2])) if found else None
        return str(asset["properties"]["dataUri"]) if asset else uri

    def _container(self, datastore: str) -> Any:
        from azure.storage.blob import BlobServiceClient

        store = self.fake.capture.datastores[datastore]["properties"]
        service = BlobServiceClient.from_connection_string(self.fake.capture.connection)
        return service.get_container_client(store["containerName"])

    def _download_code(self, code_id: str, folder: Path) -> None:
        found = re.search(r"/codes/([^/]+)/versions/([^/]+)$", code_id)
        assert found is not None
        uri = self.codes[(found[1], found[2])]["properties"]["codeUri"]
        store = next(
            name
            for name, ds in self.fake.capture.datastores.items()
            if f"/{ds['properties']['containerName']}/" in uri + "/"
        )
        container = self._container(store)
        prefix = uri.split(f"/{container.container_name}/", 1)[1].rstrip("/") + "/"
        for blob in container.list_blobs(name_starts_with=prefix):
            target = folder / blob.name[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(container.download_blob(blob.name).readall())

    def _download(self, datastore: str, path: str, kind: str, folder: Path) -> list[Path]:
        container = self._container(datastore)
        if kind == "UriFile":
            names = [path]
        else:
            prefix = path.rstrip("/") + "/" if path.strip("/") else ""
            names = sorted(b.name for b in container.list_blobs(name_starts_with=prefix))
        files = []
        for name in names:
            with contextlib.suppress(Exception):
                data = container.download_blob(name).readall()
                target = folder / Path(name).name
                target.write_bytes(data)
                target.chmod(0o644)
                files.append(target)
        return files

    def _upload(self, datastore: str, path: str, folder: Path) -> None:
        container = self._container(datastore)
        with contextlib.suppress(Exception):
            container.create_container()
        prefix = path.rstrip("/") + "/" if path.strip("/") else ""
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                name = prefix + file.relative_to(folder).as_posix()
                container.upload_blob(name, file.read_bytes(), overwrite=True)


def _output(body: dict[str, Any]) -> str:
    """The job's output folder as invoked (``outputData.score.uri``), or ""."""
    outputs = body.get("properties", {}).get("outputData") or {}
    return str((outputs.get("score") or {}).get("uri", ""))


def _seconds(value: Any) -> float:
    """An ISO 8601 duration (``PT5M``) or seconds, in seconds."""
    if isinstance(value, int | float):
        return float(value)
    found = re.fullmatch(r"P(?:T(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?)?", str(value))
    if not found:
        return -1.0
    hours, minutes, seconds = (float(v or 0) for v in found.groups())
    return datetime.timedelta(hours=hours, minutes=minutes, seconds=seconds).total_seconds()


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
