"""Render router.yaml for engines that already run at scale.

One module per format, each with ``render(manifest, options) -> Rendered``:

- ``haproxy``, ``nginx``, ``envoy``: a config file with the same backends, weights, tiers,
  health checks and retries, for **plain-HTTP backends** only (no request signing, the
  request path appended to the URL: Kubernetes Services, local containers). Managed
  endpoints need per-request cloud signing and a fixed invoke URL, which only the built-in
  router does: they are skipped, and ``Rendered.skipped`` says which and why. Each
  backend's own ``timeout`` and ``max_body_mb`` are applied by group (``limits``: body
  classes routed on Content-Length, one timeout per group); each module says how.
- ``kubernetes``: the built-in router itself as a ConfigMap, Deployment, Service, HPA and
  PodDisruptionBudget.
- ``route53``: DNS failover or weighted records as a ``change_resource_record_sets``
  change batch (pure rendering; nothing is sent to AWS).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from deployer.errors import UsageError

if TYPE_CHECKING:
    from deployer.router.manifest import BackendConfig, Manifest

FORMATS = ("haproxy", "nginx", "envoy", "kubernetes", "route53")


@dataclass
class Rendered:
    """A rendered config: its text, a file name to suggest, what was left out and why."""

    format: str
    text: str
    filename: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "filename": self.filename,
            "skipped": [{"backend": n, "reason": r} for n, r in self.skipped],
            "notes": self.notes,
            "text": self.text,
        }


@dataclass(frozen=True)
class Endpoint:
    """A plain-HTTP backend as an engine sees it."""

    config: BackendConfig
    host: str
    port: int

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def render(manifest: Manifest, fmt: str, **options: Any) -> Rendered:
    """Render ``manifest`` as ``fmt`` (one of FORMATS)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    module = importlib.import_module(f"deployer_router.render.{fmt}")
    result: Rendered = module.render(manifest, **options)
    return result


def plain_http(manifest: Manifest) -> tuple[list[Endpoint], list[tuple[str, str]]]:
    """The backends an HTTP proxy can reach as they are, and the others with a reason."""
    endpoints: list[Endpoint] = []
    skipped: list[tuple[str, str]] = []
    for backend in manifest.backends:
        parts = urlsplit(backend.url)
        if backend.auth.kind != "none":
            why = f"requests need {backend.auth.kind} signing, which only the built-in router does"
        elif backend.mode != "base":
            why = "a fixed invoke URL (managed endpoint); only the built-in router maps paths to it"
        elif parts.scheme != "http":
            why = "an https URL; only plain-HTTP backends are rendered"
        elif parts.path not in ("", "/") or parts.query:
            why = f"a path prefix ({parts.path}); engines here append the request path to host:port"
        else:
            endpoints.append(Endpoint(backend, parts.hostname or "", parts.port or 80))
            continue
        skipped.append((backend.name, why))
    if not endpoints:
        detail = "; ".join(f"{n}: {r}" for n, r in skipped) or "the manifest has no backends"
        raise UsageError(f"no plain-HTTP backend to render ({detail})")
    return endpoints, skipped


def tier_ranks(endpoints: list[Endpoint]) -> dict[int, int]:
    """Tiers renumbered 0, 1, 2 ... in order (engines want contiguous priorities)."""
    return {tier: rank for rank, tier in enumerate(sorted({e.config.tier for e in endpoints}))}


def health_path(endpoints: list[Endpoint], notes: list[str]) -> str | None:
    """The one health path an engine checks (per upstream group), or None for no checks."""
    paths = sorted({e.config.health_path for e in endpoints if e.config.health_source == "active"})
    if not paths:
        return None
    if len(paths) > 1:
        notes.append(
            f"backends use different health paths {paths}; every one is checked on {paths[0]}"
        )
    return paths[0]


def seconds(value: float) -> str:
    """A duration as the engines write it: '2s', '500ms'."""
    if value >= 1 and float(value).is_integer():
        return f"{int(value)}s"
    return f"{round(value * 1000)}ms"
