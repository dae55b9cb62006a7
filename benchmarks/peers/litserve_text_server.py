"""LitServe server for the text benchmark: a transformers text-classification pipeline with
LitServe's batching (max_batch_size 64, batch_timeout 1 ms; each batch in one pipeline
call), one worker on the CPU, one torch thread.

    MODEL_PATH=folder python litserve_text_server.py PORT

``POST /predict`` with ``{"text": "..."}`` answers ``{"label": ..., "score": ...}``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import litserve as ls
import torch
import transformers


class TextAPI(ls.LitAPI):
    def setup(self, device: str) -> None:
        torch.set_num_threads(1)
        folder = os.environ["MODEL_PATH"]
        self.pipe = transformers.pipeline(
            "text-classification", model=folder, tokenizer=folder, device="cpu"
        )

    # No annotation on ``request``: LitServe turns it into the route's request model (FastAPI
    # validation); unannotated, it passes the parsed JSON body.
    def decode_request(self, request):
        return str(request["text"])

    def batch(self, inputs: list[str]) -> list[str]:
        return inputs

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        return list(self.pipe(texts, batch_size=len(texts), truncation=True))

    def unbatch(self, output: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return output

    def encode_response(self, output: dict[str, Any]) -> dict[str, Any]:
        return output


if __name__ == "__main__":
    api = TextAPI(max_batch_size=64, batch_timeout=0.001)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(host="127.0.0.1", port=int(sys.argv[1]), generate_client_file=False)
