"""Drive the model server with tritonclient[http] (run in its own venv by the tests).

``python triton_http.py URL MODEL SCENARIO`` prints one JSON object: what the client saw.
Rows come from ROWS below; the test computes the expected predictions itself.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]]


def _input(datatype: str, binary: bool, repeat: int = 1) -> Any:
    dtype = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64}[datatype]
    array = np.tile(np.array(ROWS, dtype=np.float64), (repeat, 1)).astype(dtype)
    tensor = httpclient.InferInput("input-0", list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def _outputs(result: Any) -> dict[str, Any]:
    response = result.get_response()
    seen = {}
    for output in response["outputs"]:
        name = output["name"]
        seen[name] = {
            "datatype": output["datatype"],
            "binary": "binary_data_size" in output.get("parameters", {}),
            "data": result.as_numpy(name).tolist(),
        }
    return {"id": response.get("id"), "outputs": seen}


def health(client: Any, model: str) -> dict[str, Any]:
    return {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "server": client.get_server_metadata(),
        "model": client.get_model_metadata(model),
    }


def infer(client: Any, model: str) -> dict[str, Any]:
    """Every combination of input type, binary input and binary output; compression."""
    seen: dict[str, Any] = {}
    for datatype in ("FP32", "FP64", "INT64"):
        for binary_in in (False, True):
            for binary_out in (False, True):
                outputs = [
                    httpclient.InferRequestedOutput("predict", binary_data=binary_out),
                    httpclient.InferRequestedOutput("predict_proba", binary_data=binary_out),
                ]
                result = client.infer(
                    model, [_input(datatype, binary_in)], outputs=outputs, request_id="r-1"
                )
                seen[f"{datatype}-in{int(binary_in)}-out{int(binary_out)}"] = _outputs(result)
    # No outputs named: the client asks for every output, in binary (binary_data_output).
    seen["all-outputs"] = _outputs(client.infer(model, [_input("FP64", True)]))
    for algorithm in ("gzip", "deflate"):  # ROWS 64 times: an answer worth compressing
        result = client.infer(
            model,
            [_input("FP32", False, repeat=64)],
            request_compression_algorithm=algorithm,
            response_compression_algorithm=algorithm,
        )
        seen[f"compressed-{algorithm}"] = _outputs(result)
    return seen


def errors(client: Any, model: str) -> dict[str, Any]:
    """What the client reports for a request the server refuses."""
    seen: dict[str, Any] = {}
    bad = httpclient.InferInput("input-0", [1, 4], "FP64")
    bad.set_data_from_numpy(np.array([[np.nan, 1.0, 1.0, 1.0]]), binary_data=True)
    try:
        client.infer(model, [bad])
        seen["nan"] = "no error"
    except InferenceServerException as exc:
        seen["nan"] = {"status": exc.status(), "message": exc.message()}
    return seen


def concurrent(client: Any, model: str, count: int) -> dict[str, Any]:
    """``count`` requests in flight at once: one greenlet each, all started together."""
    import gevent

    inputs = [[_input("FP32", True)] for _ in range(count)]
    greenlets = [gevent.spawn(client.infer, model, tensors) for tensors in inputs]
    gevent.joinall(greenlets, raise_error=True)
    results = [_outputs(g.value) for g in greenlets]
    labels = {json.dumps(r["outputs"]["predict"]["data"]) for r in results}
    return {"answers": len(results), "distinct_labels": sorted(labels)}


def main(url: str, model: str, scenario: str, count: str = "1") -> None:
    concurrency = max(int(count), 1)
    client = httpclient.InferenceServerClient(url, concurrency=concurrency, network_timeout=120)
    try:
        if scenario == "concurrent":
            result = concurrent(client, model, int(count))
        else:
            result = {"health": health, "infer": infer, "errors": errors}[scenario](client, model)
    finally:
        client.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:])
