"""The model of the PyTorch benchmark: a 3-layer MLP (64 -> 256 -> 256 -> 10), scripted.

    python peers/torch_model.py OUT.pt      # writes the TorchScript file (seeded weights)

Every server loads this same file. Input ``x``: FP32 [batch, 64]; output: logits [batch, 10].
"""

from __future__ import annotations

import sys

import torch

FEATURES = 64
CLASSES = 10


class MLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(FEATURES, 256),
            torch.nn.ReLU(),
            torch.nn.Linear(256, 256),
            torch.nn.ReLU(),
            torch.nn.Linear(256, CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def main(out: str) -> None:
    torch.manual_seed(0)
    model = MLP().eval()
    torch.jit.save(torch.jit.script(model), out)


if __name__ == "__main__":
    main(sys.argv[1])
