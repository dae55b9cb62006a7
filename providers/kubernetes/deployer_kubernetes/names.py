"""Object names, labels and annotations: how every object is tied to its project and version.

Names are DNS-1035 labels (Services need that): lower-case letters, digits and '-', at most
63 characters, starting with a letter. The default is ``PROJECT-TARGET``, shortened with a
hash suffix when it would be too long for ``NAME-canary``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from deployer.providers import ANNOTATION_KEYS

MAX_BASE = 56  # room for "-canary" within 63 characters
MANAGER = "deployer"
HANDOVER_MANAGER = "deployer-handover-to-hpa"

LABEL_PROJECT = "deployer-project"
LABEL_TARGET = "deployer-target"
LABEL_VERSION = "deployer-version"
LABEL_TRACK = "deployer-track"
TRACK_STABLE = "stable"
TRACK_CANARY = "canary"

ANNOTATION_IMAGE = "deployer.dev/image"
ANNOTATION_PREVIOUS_IMAGE = "deployer.dev/previous-image"
ANNOTATION_PREVIOUS_VERSION = "deployer.dev/previous-version"
# Only on a CUDA image's Deployment (a CPU one renders as before), so a rollback or a
# canary step asks for the GPU the version it runs needs.
ANNOTATION_ACCELERATOR = "deployer.dev/accelerator"
ANNOTATION_PREVIOUS_ACCELERATOR = "deployer.dev/previous-accelerator"
# The extended resource the NVIDIA device plugin advertises; one per pod of a CUDA image.
GPU_RESOURCE = "nvidia.com/gpu"
ANNOTATION_CHANGE_CAUSE = "kubernetes.io/change-cause"
# Release annotations (deployer-model-sha256, ...) go on the Deployment as
# deployer.dev/model-sha256, ...: a qualified name of at most 63 of [A-Za-z0-9._-].
RELEASE_PREFIX = "deployer.dev/"


def release_annotations(annotations: Mapping[str, str]) -> dict[str, str]:
    """Release annotations as Kubernetes annotation keys and values."""
    found = {}
    for key, value in annotations.items():
        name = re.sub(r"[^A-Za-z0-9._-]", "_", key.removeprefix("deployer-"))[:63]
        found[RELEASE_PREFIX + name.strip("._-")] = value
    return found


def annotations_of(metadata_annotations: Mapping[str, str] | None) -> dict[str, str]:
    """The release annotations a Deployment carries, under their release keys."""
    wanted = {RELEASE_PREFIX + key.removeprefix("deployer-"): key for key in ANNOTATION_KEYS}
    return {wanted[k]: v for k, v in (metadata_annotations or {}).items() if k in wanted}


def dns_label(text: str, limit: int = MAX_BASE) -> str:
    """``text`` as a DNS-1035 label of at most ``limit`` characters (hash-suffixed if cut)."""
    clean = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    clean = re.sub(r"-{2,}", "-", clean)
    if not clean or not clean[0].isalpha():
        clean = f"d-{clean}".rstrip("-")
    if len(clean) <= limit:
        return clean
    digest = hashlib.sha256(text.encode()).hexdigest()[:6]
    return f"{clean[: limit - 7].rstrip('-')}-{digest}"


def label_value(text: str) -> str:
    """``text`` as a label value: at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends."""
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", clean)


@dataclass(frozen=True)
class Names:
    """Every name and label deployer gives the objects of one project's target."""

    project: str
    target: str
    base: str
    namespace: str

    @classmethod
    def of(cls, project: str, target: str, namespace: str, override: str | None) -> Names:
        return cls(project, target, override or dns_label(f"{project}-{target}"), namespace)

    @property
    def canary(self) -> str:
        return f"{self.base}-canary"

    def deployment(self, track: str = TRACK_STABLE) -> str:
        return self.canary if track == TRACK_CANARY else self.base

    def service(self, track: str = TRACK_STABLE) -> str:
        return self.canary if track == TRACK_CANARY else self.base

    @property
    def owner(self) -> dict[str, str]:
        """The labels that find everything deployer created for this project and target."""
        return {LABEL_PROJECT: label_value(self.project), LABEL_TARGET: label_value(self.target)}

    @property
    def owner_selector(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.owner.items())

    def selector(self, track: str = TRACK_STABLE) -> dict[str, str]:
        """A Deployment's (immutable) pod selector: owner plus track, never the version."""
        return {**self.owner, LABEL_TRACK: track}

    def labels(self, version: str, track: str | None = None) -> dict[str, str]:
        """Labels of every object: recommended app.kubernetes.io ones plus deployer's own."""
        labels = {
            "app.kubernetes.io/name": label_value(self.project),
            "app.kubernetes.io/instance": self.base,
            "app.kubernetes.io/version": label_value(version),
            "app.kubernetes.io/component": "model-server",
            "app.kubernetes.io/managed-by": MANAGER,
            **self.owner,
            LABEL_VERSION: label_value(version),
        }
        if track:
            labels[LABEL_TRACK] = track
        return labels
