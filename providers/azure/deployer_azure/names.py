"""Resource names within Azure ML's rules, derived from the project, target and version.

Online endpoint and deployment names: 3-32 characters, letters, digits and '-',
starting with a letter and not ending with '-'. Endpoint names are unique per Azure
region (they are the scoring host name), so the default one carries project and target.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from deployer.providers import ANNOTATION_KEYS

MAX_LENGTH = 32
TAG_PROJECT = "deployer-project"
TAG_TARGET = "deployer-target"
TAG_VERSION = "deployer-version"
TAG_IMAGE = "deployer-image"
TAG_CREATED = "deployer-created"
DEPLOYMENT_HEADER = "azureml-model-deployment"


def _clean(text: str) -> str:
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-zA-Z0-9-]", "-", text)).strip("-")


def _fit(name: str, source: str) -> str:
    """Cut ``name`` to 32 characters, keeping it unique with a short hash of ``source``."""
    if len(name) <= MAX_LENGTH:
        return name
    digest = hashlib.sha256(source.encode()).hexdigest()[:6]
    return f"{name[: MAX_LENGTH - 7].rstrip('-')}-{digest}"


def endpoint_name(project: str, target: str, override: str | None = None) -> str:
    """``override``, or ``project-target`` cleaned and cut to the rules."""
    if override:
        return override
    name = _clean(f"{project}-{target}").lower()
    if not name or not name[0].isalpha():
        name = f"ep-{name}"
    name = _fit(name, f"{project}/{target}")
    return name if len(name) >= 3 else f"{name}-ep"


def deployment_name(version: str) -> str:
    """``v`` + the release version (image id and model digest, short), within 32 characters."""
    return _fit(f"v{_clean(version).lower()}", version)


_NOT_IN_TAG_NAMES = re.compile(r"[<>%&\\?/]")  # what Azure Resource Manager refuses in tag names


def annotation_tags(annotations: Mapping[str, str]) -> dict[str, str]:
    """Release annotations as Azure tags: names without ``<>%&\\?/`` (at most 512
    characters), values at most 256 characters."""
    return {
        _NOT_IN_TAG_NAMES.sub("_", key)[:512]: value[:256] for key, value in annotations.items()
    }


def annotations_of(tags: Mapping[str, str] | None) -> dict[str, str]:
    """The release annotations among a resource's tags."""
    return {key: value for key, value in (tags or {}).items() if key in ANNOTATION_KEYS}
