"""TorchServe 0.12 handler for the PyTorch benchmark: the TorchScript MLP, loaded by TorchServe's
own BaseHandler (its documented way to serve a TorchScript file). TorchServe's batching
(batchSize 64, maxBatchDelay 1 ms: the model-config.yaml written by benchmarks/torchserve_peer.py)
hands it a batch of requests; one torch thread.

``POST /predictions/mlp`` with ``{"x": [64 floats]}`` answers the row's logits.
"""

from __future__ import annotations

from typing import Any

import torch
from ts.torch_handler.base_handler import BaseHandler


class MLPHandler(BaseHandler):
    def initialize(self, context: Any) -> None:
        torch.set_num_threads(1)
        super().initialize(context)

    def preprocess(self, data: list[dict[str, Any]]) -> torch.Tensor:
        rows = [(item.get("body") or item.get("data"))["x"] for item in data]
        return torch.tensor(rows, dtype=torch.float32)

    def inference(self, data: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        with torch.inference_mode():
            return self.model(data)

    def postprocess(self, data: torch.Tensor) -> list[list[float]]:
        return data.tolist()
