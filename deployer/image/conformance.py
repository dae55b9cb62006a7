"""``deployer check``: run the image and prove every cloud's serving contract.

Each contract is checked twice: as root (SageMaker's expectation; the image's own user is
the non-root uid 10001) and as an arbitrary
non-root uid with a read-only root filesystem, a tmpfs /tmp and no capabilities
(Kubernetes' restricted profile). SIGTERM must end the server cleanly well within 30 s.
The SageMaker container has an empty folder mounted at /opt/ml/model, as SageMaker mounts
the model artifact there: an image that keeps its model in that folder fails.
"""

from __future__ import annotations

import gzip
import json
import struct
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from deployer.image.containers import ContainerFailed, RunningContainer, run_container, wait_healthy
from deployer.serving import routes

VERTEX_PORT = 7080
VERTEX_HEALTH = "/v1/endpoints/1234/deployedModels/5678"
VERTEX_PREDICT = "/v1/endpoints/1234/deployedModels/5678:predict"
VERTEX_ENV = {
    "AIP_HTTP_PORT": str(VERTEX_PORT),
    "AIP_HEALTH_ROUTE": VERTEX_HEALTH,
    "AIP_PREDICT_ROUTE": VERTEX_PREDICT,
    "AIP_MODE": "PREDICTION",
    "AIP_FRAMEWORK": "CUSTOM_CONTAINER",
    "AIP_DEPLOYED_MODEL_ID": "5678",
    "AIP_ENDPOINT_ID": "1234",
    # Vertex names the endpoint's artifact copy whenever a model has an artifact_uri; the
    # image must start with it set (ours notes it and serves the model built into it).
    "AIP_STORAGE_URI": "gs://deployer-check/artifact",
}
MODES = {"root": False, "non-root, read-only": True}
# SageMaker mounts the model artifact's folder here, over whatever the image keeps there;
# the SageMaker container runs with an empty folder mounted at this path.
SAGEMAKER_ARTIFACT_MOUNT = {"/opt/ml/model": "rw,size=1m"}
STARTUP_TIMEOUT_S = 240.0  # SageMaker's default container start-up health budget
PING_BUDGET_S = 2.0
SHUTDOWN_BUDGET_S = 30.0


@dataclass(frozen=True)
class ContractResult:
    contract: str
    mode: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class CheckReport:
    image: str
    results: list[ContractResult]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "passed": self.passed,
            "results": [asdict(r) for r in self.results],
        }


class Failure(Exception):
    """One contract requirement did not hold."""


@dataclass(frozen=True)
class Sample:
    """Two rows of zeros shaped like the model's input, read from its OIP metadata: rows
    of features, or (``tensors`` set: several inputs, or one not 2-D) one object
    ``{input: value}`` per row, each variable dimension of size 1."""

    model: str
    rows: list[Any]
    datatype: str
    tensors: tuple[dict[str, Any], ...] = ()

    @property
    def csv(self) -> str:
        return "\n".join(",".join(str(v) for v in row) for row in self.rows)

    def infer_inputs(self) -> list[dict[str, Any]]:
        """The OIP inputs: name, shape (batch 2), datatype and flat zeros."""
        if not self.tensors:
            flat = [v for row in self.rows for v in row]
            shape = [2, len(self.rows[0])]
            return [{"name": "input-0", "shape": shape, "datatype": self.datatype, "data": flat}]
        inputs = []
        for tensor in self.tensors:
            shape = [2, *(d if d > 0 else 1 for d in tensor["shape"][1:])]
            count = 1
            for d in shape:
                count *= d
            zero = _zero(tensor["datatype"])
            inputs.append({**tensor, "shape": shape, "data": [zero] * count})
        return inputs


def _zero(datatype: str) -> Any:
    return {"BYTES": "0", "BOOL": False}.get(datatype, 0)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


def discover_sample(http: httpx.Client, url: str, model: str) -> Sample:
    metadata = http.get(f"{url}/v2/models/{model}")
    expect(metadata.status_code == 200, f"GET /v2/models/{model} answered {metadata.status_code}")
    inputs = metadata.json()["inputs"]
    tensor = inputs[0]
    if len(inputs) > 1 or len(tensor["shape"]) != 2:
        tensors = tuple(
            {"name": t["name"], "datatype": t["datatype"], "shape": t["shape"]} for t in inputs
        )
        instance: dict[str, Any] = {}
        for t in tensors:
            value = _zero(t["datatype"])
            for size in reversed(t["shape"][1:]):
                value = [value] * (size if size > 0 else 1)
            instance[t["name"]] = value
        return Sample(model, [instance, instance], "", tensors)
    width = tensor["shape"][-1] if tensor["shape"][-1] > 0 else 1
    zero = _zero(tensor["datatype"])
    return Sample(model, [[zero] * width for _ in range(2)], tensor["datatype"])


def _predictions(response: httpx.Response, what: str, rows: int) -> None:
    expect(
        response.status_code == 200,
        f"{what} answered {response.status_code}: {response.text[:200]}",
    )
    body = response.json()
    expect(
        isinstance(body, dict) and len(body.get("predictions", [])) == rows,
        f"{what} did not return {rows} predictions: {response.text[:200]}",
    )


def check_sagemaker(http: httpx.Client, url: str, sample: Sample) -> str:
    started = time.perf_counter()
    ping = http.get(url + routes.SAGEMAKER_PING)
    ping_s = time.perf_counter() - started
    expect(ping.status_code == 200, f"/ping answered {ping.status_code}")
    expect(ping_s < PING_BUDGET_S, f"/ping took {ping_s:.2f}s (budget {PING_BUDGET_S}s)")
    _predictions(
        http.post(url + routes.SAGEMAKER_INVOCATIONS, json=sample.rows), "/invocations (json)", 2
    )
    if sample.tensors:  # CSV carries rows only: the server must say so (415)
        csv = http.post(
            url + routes.SAGEMAKER_INVOCATIONS,
            content=b"0,0\n",
            headers={"content-type": "text/csv"},
        )
        expect(csv.status_code == 415, f"/invocations (csv) of named tensors: {csv.status_code}")
        return f"/ping {ping_s * 1000:.0f} ms; /invocations json (named tensors; csv: 415)"
    csv = http.post(
        url + routes.SAGEMAKER_INVOCATIONS,
        content=sample.csv,
        headers={"content-type": "text/csv", "accept": "text/csv"},
    )
    expect(
        csv.status_code == 200, f"/invocations (csv) answered {csv.status_code}: {csv.text[:200]}"
    )
    expect(len(csv.text.strip().splitlines()) == 2, "/invocations (csv) did not return 2 lines")
    return f"/ping {ping_s * 1000:.0f} ms; /invocations json and csv"


def check_azure(http: httpx.Client, url: str, sample: Sample) -> str:
    for path in (routes.AZURE_LIVENESS, routes.AZURE_READINESS):
        status = http.get(url + path).status_code
        expect(status == 200, f"{path} answered {status}")
    _predictions(
        http.post(url + routes.AZURE_SCORING, json={"instances": sample.rows}),
        routes.AZURE_SCORING,
        2,
    )
    return f"{routes.AZURE_LIVENESS}, {routes.AZURE_READINESS}, {routes.AZURE_SCORING}"


NUMERIC_FORMATS = {
    "FP16": "e", "FP32": "f", "FP64": "d", "BOOL": "?",
    "INT8": "b", "INT16": "h", "INT32": "i", "INT64": "q",
    "UINT8": "B", "UINT16": "H", "UINT32": "I", "UINT64": "Q",
}  # fmt: skip


def _json_body(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise Failure(f"{what} answered no JSON: {response.text[:200]}") from None


def _infer_request(sample: Sample) -> dict[str, Any]:
    return {"inputs": sample.infer_inputs()}


def binary_infer_body(sample: Sample) -> tuple[bytes, int]:
    """The sample as OIP's binary tensor data extension: (body, JSON header length)."""
    request = _infer_request(sample)
    chunks = []
    for tensor in request["inputs"]:
        flat = tensor.pop("data")
        if tensor["datatype"] == "BYTES":
            raw = b"".join(struct.pack("<I", len(str(v))) + str(v).encode() for v in flat)
        else:
            code = NUMERIC_FORMATS.get(tensor["datatype"], "d")
            raw = struct.pack(f"<{len(flat)}{code}", *flat)
        tensor["parameters"] = {"binary_data_size": len(raw)}
        chunks.append(raw)
    raw = b"".join(chunks)
    request["parameters"] = {"binary_data_output": False}
    header = json.dumps(request).encode()
    return header + raw, len(header)


def _infer_output(response: httpx.Response, what: str) -> None:
    expect(
        response.status_code == 200,
        f"{what} answered {response.status_code}: {response.text[:200]}",
    )
    output = _json_body(response, what)["outputs"][0]
    expect(
        output["shape"][0] == 2 and len(output["data"]) >= 2,
        f"{what} output has shape {output['shape']}",
    )


def check_oip(http: httpx.Client, url: str, sample: Sample) -> str:
    """Health bodies as the spec gives them, metadata, and infer as JSON, as the binary
    tensor extension (tritonclient, kserve) and gzip-compressed (tritonclient)."""
    model = sample.model
    bodies: dict[str, Any] = {
        routes.OIP_LIVE: {"live": True},
        routes.OIP_READY: {"ready": True},
        f"/v2/models/{model}/ready": {"name": model, "ready": True},
        "/v2": None,  # server metadata: any JSON
    }
    for path, wanted in bodies.items():
        response = http.get(url + path)
        expect(response.status_code == 200, f"{path} answered {response.status_code}")
        body = _json_body(response, path)
        if wanted is not None:
            expect(body == wanted, f"{path} answered {body}, the spec's body is {wanted}")
    infer = f"{url}/v2/models/{model}/infer"
    _infer_output(http.post(infer, json=_infer_request(sample)), "infer")
    body, header_length = binary_infer_body(sample)
    binary = http.post(
        infer,
        content=body,
        headers={
            "content-type": "application/octet-stream",
            "inference-header-content-length": str(header_length),
        },
    )
    _infer_output(binary, "infer with binary tensor data")
    compressed = http.post(
        infer,
        content=gzip.compress(json.dumps(_infer_request(sample)).encode()),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    _infer_output(compressed, "infer with a gzip body")
    metrics = http.get(url + routes.METRICS)
    expect(
        metrics.status_code == 200 and "deployer_request_duration_seconds" in metrics.text,
        "/metrics has no request histogram",
    )
    return "health bodies, metadata, infer (JSON, binary tensors, gzip); /metrics"


def check_vertex(http: httpx.Client, url: str, sample: Sample) -> str:
    status = http.get(url + VERTEX_HEALTH).status_code
    expect(status == 200, f"AIP_HEALTH_ROUTE answered {status}")
    body = {"instances": sample.rows, "parameters": {}}
    _predictions(http.post(url + VERTEX_PREDICT, json=body), "AIP_PREDICT_ROUTE", 2)
    return f"port {VERTEX_PORT} and routes from AIP_* variables"


def check_shutdown(running: RunningContainer) -> str:
    started = time.monotonic()
    running.container.stop(timeout=int(SHUTDOWN_BUDGET_S))
    seconds = time.monotonic() - started
    running.container.reload()
    code = running.container.attrs["State"]["ExitCode"]
    expect(code == 0, f"exit code {code} after SIGTERM; logs:\n{running.logs(5)}")
    expect(seconds < SHUTDOWN_BUDGET_S - 5, f"took {seconds:.1f}s to stop after SIGTERM")
    return f"clean exit {seconds:.1f}s after SIGTERM"


Probe = Callable[[httpx.Client, str, Sample], str]
CONTRACTS: list[tuple[str, Probe]] = [
    ("SageMaker", check_sagemaker),
    ("Azure ML", check_azure),
    ("OIP v2", check_oip),
]


def _attempt(contract: str, mode: str, probe: Callable[[], str]) -> ContractResult:
    try:
        return ContractResult(contract, mode, True, probe())
    except (Failure, ContainerFailed) as exc:
        return ContractResult(contract, mode, False, str(exc))
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        return ContractResult(contract, mode, False, f"{type(exc).__name__}: {exc}")


def check_mode(client: Any, image: str, model: str, mode: str) -> list[ContractResult]:
    """All contracts for one user mode: a default container, a Vertex-style container."""
    restricted = MODES[mode]
    user = None if restricted else "0"
    main = run_container(
        client,
        image,
        command=["serve"],
        restricted=restricted,
        tmpfs=SAGEMAKER_ARTIFACT_MOUNT,
        user=user,
    )
    vertex = run_container(
        client,
        image,
        container_port=VERTEX_PORT,
        environment=VERTEX_ENV,
        restricted=restricted,
        user=user,
    )
    results: list[ContractResult] = []
    try:
        with httpx.Client(timeout=30.0) as http:
            try:
                ready_s = wait_healthy(main, routes.SAGEMAKER_PING, STARTUP_TIMEOUT_S)
                sample = discover_sample(http, main.url, model)
            except (ContainerFailed, Failure, httpx.HTTPError) as exc:
                names = [c for c, _ in CONTRACTS] + ["Vertex AI", "SIGTERM"]
                return [ContractResult(c, mode, False, str(exc)) for c in names]
            for contract, probe in CONTRACTS:
                results.append(_attempt(contract, mode, lambda p=probe: p(http, main.url, sample)))  # type: ignore[misc]
            results[0] = ContractResult(
                "SageMaker",
                mode,
                results[0].passed,
                f"{results[0].detail}; ready in {ready_s:.1f}s",
            )

            def vertex_probe() -> str:
                wait_healthy(vertex, VERTEX_HEALTH, STARTUP_TIMEOUT_S)
                return check_vertex(http, vertex.url, sample)

            results.append(_attempt("Vertex AI", mode, vertex_probe))
        results.append(_attempt("SIGTERM", mode, lambda: check_shutdown(main)))
    finally:
        main.remove()
        vertex.remove()
    return results


def check_image(client: Any, image: str, model: str | None = None) -> CheckReport:
    """Check ``image`` in every mode (in parallel) and report per contract and mode."""
    if model is None:
        labels = client.images.get(image).labels or {}
        model = labels.get("dev.deployer.project", "model")
    with ThreadPoolExecutor(max_workers=len(MODES)) as pool:
        futures = [pool.submit(check_mode, client, image, model, mode) for mode in MODES]
        results = [r for f in futures for r in f.result()]
    return CheckReport(image, results)
