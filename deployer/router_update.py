"""router.yaml kept in step with the targets: a successful push adds (or refreshes) the
pushed targets' backends, a destroy takes the destroyed targets' backends out.

Backends the push did not touch keep their weights, tiers, health and hand edits. A
running router reloads the file by itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deployer.providers import Provider


def add_pushed(
    project: str,
    pushed: Mapping[str, Provider],
    options: Mapping[str, dict[str, Any]],
    file: Path,
) -> Path:
    """Write ``file`` with the pushed targets' routes plus the backends it already listed
    (their weights, tiers and health kept); ``options`` are the targets' deployer.yaml
    options."""
    from deployer.providers import Backend
    from deployer.router import manifest

    existing = manifest.load(file) if file.exists() else None
    kept = [
        Backend(b.name, b.provider, b.url, b.auth.kind, b.region)
        for b in (existing.backends if existing else [])
        if b.name not in pushed
    ]
    routes = [provider.route() for provider in pushed.values()]
    updated = manifest.from_backends(
        project,
        [*kept, *routes],
        existing,
        options={name: options[name] for name in pushed},
        limits={name: declared_limits(provider) for name, provider in pushed.items()},
    )
    return manifest.write(updated, file)


def declared_limits(provider: Provider) -> dict[str, float]:
    """The router limits ``provider`` declares for its backend: ``timeout`` from its
    ``request_timeout_seconds``, ``max_body_mb`` from its ``max_request_bytes`` (each
    left out when not declared; see deployer.providers.protocol)."""
    from deployer.providers import limit

    declared: dict[str, float] = {}
    seconds = limit(provider, "request_timeout_seconds")
    if seconds is not None:
        declared["timeout"] = min(seconds, 3600.0)
    size = limit(provider, "max_request_bytes")
    if size is not None:
        declared["max_body_mb"] = min(size / (1024 * 1024), 4096.0)
    return declared


def routed(kinds: Mapping[str, str], file: Path | None) -> list[str]:
    """The backends of ``file`` that are these targets (``kinds``: target -> provider; the
    same name and provider); an invalid file raises ConfigError."""
    from deployer.router import manifest

    if file is None or not file.exists():
        return []
    return [b.name for b in manifest.load(file).backends if kinds.get(b.name) == b.provider]


def remove(names: list[str], file: Path) -> list[str]:
    """Take ``names`` out of ``file`` as it is now (it may have been edited meanwhile);
    the names actually removed."""
    from deployer.router import manifest

    current = manifest.load(file)
    gone = [b.name for b in current.backends if b.name in names]
    if gone:
        kept = [b for b in current.backends if b.name not in gone]
        manifest.write(manifest.replace_backends(current, kept), file)
    return gone
