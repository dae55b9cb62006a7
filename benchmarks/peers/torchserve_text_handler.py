"""TorchServe 0.12 handler for the text benchmark: a transformers text-classification pipeline
over the model folder packed into the model's directory (torch-model-archiver
``--extra-files``). TorchServe's batching (batchSize 64, maxBatchDelay 1 ms: the
model-config.yaml written by benchmarks/torchserve_peer.py) hands it a batch of requests, run
in one pipeline call; one torch thread.

``POST /predictions/text`` with ``{"text": "..."}`` answers ``{"label": ..., "score": ...}``.
"""

from __future__ import annotations

from typing import Any

import torch
import transformers
from ts.torch_handler.base_handler import BaseHandler


class TextHandler(BaseHandler):
    def initialize(self, context: Any) -> None:
        torch.set_num_threads(1)
        folder = context.system_properties["model_dir"]
        self.pipe = transformers.pipeline(
            "text-classification", model=folder, tokenizer=folder, device="cpu"
        )
        self.initialized = True

    def preprocess(self, data: list[dict[str, Any]]) -> list[str]:
        return [str((item.get("body") or item.get("data"))["text"]) for item in data]

    def inference(self, data: list[str], *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return list(self.pipe(data, batch_size=len(data), truncation=True))

    def postprocess(self, data: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return data
