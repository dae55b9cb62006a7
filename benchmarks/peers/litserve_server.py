"""LitServe server for the PyTorch benchmark: the TorchScript MLP with LitServe's batching
(max_batch_size 64, batch_timeout 1 ms), one worker on the CPU, one torch thread.

    MODEL_PATH=model.pt python litserve_server.py PORT

``POST /predict`` with ``{"x": [64 floats]}`` answers ``{"output": logits}``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import litserve as ls
import numpy as np
import torch


class MLPAPI(ls.LitAPI):
    def setup(self, device: str) -> None:
        torch.set_num_threads(1)
        self.model = torch.jit.load(os.environ["MODEL_PATH"], map_location="cpu").eval()

    # No annotation on ``request``: LitServe turns it into the route's request model (FastAPI
    # validation); unannotated, it passes the parsed JSON body.
    def decode_request(self, request):
        return np.asarray(request["x"], dtype=np.float32)

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.stack(inputs)

    def predict(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model(torch.from_numpy(x)).numpy()

    def unbatch(self, output: np.ndarray) -> list[np.ndarray]:
        return list(output)

    def encode_response(self, output: np.ndarray) -> dict[str, Any]:
        return {"output": output.tolist()}


if __name__ == "__main__":
    api = MLPAPI(max_batch_size=64, batch_timeout=0.001)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(host="127.0.0.1", port=int(sys.argv[1]), generate_client_file=False)
