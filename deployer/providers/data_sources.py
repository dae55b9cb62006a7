"""Data URIs (``s3://``, ``gs://``, ``az://``): the object a URI names, read through the
cloud's own SDK by the provider distribution that registers its scheme.

A distribution registers ``scheme = "module:function"`` under the entry-point group
``deployer.data_sources``; the function takes the URI and returns a :class:`DataObject`
(checked to exist: a missing bucket, container or object, or missing credentials, is a
UsageError naming the URI). ``DISTRIBUTIONS`` is the one table of the schemes we know:
which distribution to install, and where its opener lives when the installed metadata
predates the entry point (an editable install made before it was added).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import IO, Protocol, runtime_checkable

from deployer.errors import UsageError

ENTRY_POINT_GROUP = "deployer.data_sources"
# scheme -> (distribution, "module:function")
DISTRIBUTIONS: dict[str, tuple[str, str]] = {
    "s3": ("deployer-aws", "deployer_aws.data_source:open_s3"),
    "gs": ("deployer-gcp", "deployer_gcp.data_source:open_gs"),
    "az": ("deployer-azure", "deployer_azure.data_source:open_az"),
    "abfs": ("deployer-azure", "deployer_azure.data_source:open_abfs"),
    "abfss": ("deployer-azure", "deployer_azure.data_source:open_abfs"),
}

Opener = Callable[[str], "DataObject"]


@runtime_checkable
class DataObject(Protocol):
    """One object a URI names: ``name`` (the URI), ``size`` in bytes (None: unknown) and
    ``open()``, a readable binary stream (seekable or not)."""

    @property
    def name(self) -> str: ...

    @property
    def size(self) -> int | None: ...

    def open(self) -> IO[bytes]: ...


@dataclass(frozen=True)
class RemoteObject:
    """A DataObject whose stream comes from ``reader`` (what a provider returns)."""

    name: str
    size: int | None
    reader: Callable[[], IO[bytes]] = field(repr=False)

    def open(self) -> IO[bytes]:
        return self.reader()


def split_uri(uri: str, parts: int, form: str) -> list[str]:
    """``scheme://a/b/c`` as ``parts`` non-empty pieces (the last keeps its slashes); a
    UsageError naming the URI and ``form`` when it has fewer."""
    rest = uri.split("://", 1)[1] if "://" in uri else ""
    pieces = rest.split("/", parts - 1)
    if len(pieces) != parts or not all(pieces):
        raise UsageError(f"{uri}: not a data URI of the form {form}")
    return pieces


def scheme_of(uri: str) -> str:
    """The URI's scheme, lowercased (``s3`` for ``S3://b/k``); UsageError without one."""
    scheme, sep, _ = uri.partition("://")
    if not sep or not scheme:
        raise UsageError(f"{uri}: not a URI (expected scheme://...)")
    return scheme.lower()


def _installed(scheme: str) -> Opener | None:
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == scheme:
            loaded: Opener = entry.load()
            return loaded
    return None


def _known(scheme: str, uri: str) -> Opener:
    """The opener from the table, when its distribution is importable."""
    dist, target = DISTRIBUTIONS[scheme]
    module, _, function = target.partition(":")
    try:
        opener: Opener = getattr(importlib.import_module(module), function)
    except ImportError:
        raise UsageError(
            f"{uri}: reading {scheme}:// needs the {dist} distribution, which is not installed",
            hint=f"pip install {dist}",
        ) from None
    return opener


def opener_for(uri: str) -> Opener:
    """The function that opens ``uri``, by its scheme."""
    scheme = scheme_of(uri)
    opener = _installed(scheme)
    if opener is not None:
        return opener
    if scheme in DISTRIBUTIONS:
        return _known(scheme, uri)
    known = ", ".join(f"{s}://" for s in sorted(DISTRIBUTIONS))
    raise UsageError(f"{uri}: no installed distribution reads {scheme}:// URIs; known: {known}")


def open_uri(uri: str) -> DataObject:
    """The object ``uri`` names, checked to exist (see the module's docstring)."""
    return opener_for(uri)(uri)
