"""Create a tiny PyTorch model (random weights, no download) next to this file:
model.pt (TorchScript, torch.jit.save) and model.pt2 (torch.export.save).

    python examples/pytorch/create.py [FOLDER]

It takes two named inputs, ``image`` (float32, [batch, 1, 8, 8]) and ``scale``
(float32, [batch]), and answers two named outputs, ``logits`` and ``probabilities``
(float32, [batch, 3]). TorchScript does not record shapes and dtypes, so deployer.yaml
declares them; the .pt2 program carries its own (the batch dimension is dynamic).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

CLASSES = 3


class TinyNet(torch.nn.Module):
    """A convolution, a pooling and a linear layer: small enough to build in a second."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, kernel_size=3, padding=1)
        self.head = torch.nn.Linear(4, CLASSES)

    def forward(self, image: torch.Tensor, scale: torch.Tensor) -> dict[str, torch.Tensor]:
        features = torch.relu(self.conv(image)).mean(dim=(2, 3))
        logits = self.head(features) * scale.unsqueeze(1)
        return {"logits": logits, "probabilities": torch.softmax(logits, dim=1)}


def example_inputs(batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.rand(batch, 1, 8, 8, generator=generator), torch.ones(batch)


def build() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet().eval()


def save_torchscript(model: TinyNet, path: Path) -> Path:
    torch.jit.save(torch.jit.script(model), str(path))
    return path


def save_exported(model: TinyNet, path: Path) -> Path:
    batch = torch.export.Dim("batch", min=1, max=65536)
    program = torch.export.export(
        model, example_inputs(), dynamic_shapes={"image": {0: batch}, "scale": {0: batch}}
    )
    torch.export.save(program, str(path))
    return path


def main(folder: Path) -> None:
    model = build()
    for path in (
        save_torchscript(model, folder / "model.pt"),
        save_exported(model, folder / "model.pt2"),
    ):
        print(f"wrote {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
