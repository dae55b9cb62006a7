"""Drive the model server with kserve's v2 REST client (run in its own venv by the tests).

``python kserve_rest.py BASE_URL MODEL`` prints one JSON object: what the client saw.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]]


async def _infer(client: Any, url: str, model: str, datatype: str, binary: bool) -> Any:
    dtype = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64}[datatype]
    array = np.array(ROWS, dtype=np.float64).astype(dtype)
    tensor = InferInput("input-0", list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    request = InferRequest(model_name=model, infer_inputs=[tensor], request_id="k-1")
    response = await client.infer(url, request, model_name=model)
    return {
        "id": response.id,
        "outputs": {
            o.name: {"datatype": o.datatype, "data": o.as_numpy().tolist()}
            for o in response.outputs
        },
    }


async def run(url: str, model: str) -> dict[str, Any]:
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=60))
    try:
        seen: dict[str, Any] = {
            "server_ready": await client.is_server_ready(url),
            "server_live": await client.is_server_live(url),
            "model_ready": await client.is_model_ready(url, model),
        }
        for datatype in ("FP32", "FP64", "INT64"):
            for binary in (False, True):
                key = f"{datatype}-binary{int(binary)}"
                seen[key] = await _infer(client, url, model, datatype, binary)
        return seen
    finally:
        await client.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(sys.argv[1], sys.argv[2]))))
