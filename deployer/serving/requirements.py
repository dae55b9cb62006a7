"""What the serving image (and the local target's front image) installs: the single source
for the image builders and the tests."""

from __future__ import annotations

# Top-level requirements of the serving runtime (pip specifiers).
RUNTIME_REQUIREMENTS: tuple[str, ...] = (
    "numpy>=1.26,<3",
    "orjson>=3.9,<4",
    "pyyaml>=6.0,<7",
    "uvicorn>=0.30,<1",
    "httptools>=0.6,<1",
    "uvloop>=0.19,<1",
    "prometheus-client>=0.20,<1",
)

# The local target's front image (deployer/local/front.py: uvicorn serving, httpx
# forwarding). The router image's requirements live in the deployer-router distribution.
FRONT_REQUIREMENTS: tuple[str, ...] = (
    "orjson>=3.9,<4",
    "uvicorn>=0.30,<1",
    "httptools>=0.6,<1",
    "uvloop>=0.19,<1",
    "httpx>=0.27,<1",
)

# Extra requirements per model flavour.
FLAVOR_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "sklearn": ("scikit-learn>=1.3,<2", "joblib>=1.3,<2"),
    "onnx": ("onnxruntime>=1.17,<2",),
    "xgboost": ("xgboost>=2.0,<4",),
    "python": (),
    # Pinned by the image build to the torch installed on the host (the one the model was
    # tested with); a host without torch resolves the CPU wheel (deployer/image/wheelhouse.py).
    "pytorch": ("torch>=2.4,<3",),
    "lightgbm": ("lightgbm>=4.0,<5",),
    "catboost": ("catboost>=1.2,<2",),
    # an MLflow model maps to a native flavour, or brings mlflow-skinny and its own
    # requirements.txt (deployer.flavors.image_needs; Project.build_spec adds them)
    "mlflow": (),
    # torch pinned to the host build like the pytorch flavour; transformers and tokenizers
    # to the host versions too (deployer/image/wheelhouse.py: PIN_TO_HOST).
    "transformers": ("torch>=2.4,<3", "transformers>=4.40,<6", "tokenizers>=0.19,<1"),
    # Keras 3 only: its backend (tensorflow-cpu, torch or jax; a SavedModel: tensorflow-cpu)
    # follows model.options.backend (deployer.flavors.keras_flavor.image_needs).
    "keras": ("keras>=3,<4",),
}


def requirements_for(flavor: str, extra: tuple[str, ...] = ()) -> list[str]:
    """Every requirement the image needs for ``flavor`` plus the project's own ``extra``."""
    return [*RUNTIME_REQUIREMENTS, *FLAVOR_REQUIREMENTS.get(flavor, ()), *extra]
