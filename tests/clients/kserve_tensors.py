"""Named tensors (FP32 image, FP64 scale, BYTES text) through kserve's v2 REST client.

``python kserve_tensors.py BASE_URL MODEL`` prints one JSON object: the outputs seen
(run in its own venv by the tests).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

IMAGES = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
SCALES = np.array([1.0, 0.5], dtype=np.float64)
TEXTS = np.array(["héllo".encode(), b"ab"], dtype=object)


def _plain(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


async def run(url: str, model: str) -> dict[str, Any]:
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=60))
    try:
        tensors = []
        for name, array, datatype in (
            ("image", IMAGES, "FP32"),
            ("scale", SCALES, "FP64"),
            ("text", TEXTS, "BYTES"),
        ):
            tensor = InferInput(name, list(array.shape), datatype)
            tensor.set_data_from_numpy(array, binary_data=False)
            tensors.append(tensor)
        request = InferRequest(model_name=model, infer_inputs=tensors, request_id="k-1")
        response = await client.infer(url, request, model_name=model)
        return {o.name: [_plain(v) for v in o.as_numpy().tolist()] for o in response.outputs}
    finally:
        await client.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(*sys.argv[1:]))))
