"""Named tensors (FP32 image, FP64 scale, BYTES text) through tritonclient[http].

``python triton_tensors.py HOST:PORT MODEL`` prints one JSON object: the outputs seen
for JSON and binary inputs and outputs (run in its own venv by the tests).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import tritonclient.http as httpclient

IMAGES = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
SCALES = np.array([1.0, 0.5], dtype=np.float64)
TEXTS = np.array(["héllo".encode(), b"ab"], dtype=object)


def _inputs(binary: bool) -> list[Any]:
    tensors = []
    for name, array, datatype in (
        ("image", IMAGES, "FP32"),
        ("scale", SCALES, "FP64"),
        ("text", TEXTS, "BYTES"),
    ):
        tensor = httpclient.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        tensors.append(tensor)
    return tensors


def _plain(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def main(url: str, model: str) -> None:
    client = httpclient.InferenceServerClient(url, network_timeout=120)
    seen: dict[str, Any] = {"metadata": client.get_model_metadata(model)}
    for binary in (False, True):
        outputs = [
            httpclient.InferRequestedOutput(name, binary_data=binary)
            for name in ("total", "label", "length")
        ]
        result = client.infer(model, _inputs(binary), outputs=outputs, request_id="t-1")
        seen[f"binary-{int(binary)}"] = {
            name: [_plain(v) for v in result.as_numpy(name).tolist()]
            for name in ("total", "label", "length")
        }
    client.close()
    print(json.dumps(seen))


if __name__ == "__main__":
    main(*sys.argv[1:])
