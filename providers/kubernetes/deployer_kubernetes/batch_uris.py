"""Where a Kubernetes batch job reads and writes: volumes named by URIs.

- ``pvc://CLAIM/PATH``: PATH inside the PersistentVolumeClaim CLAIM (the claim must exist
  in the target's namespace; ReadWriteMany when several pods may run on several nodes);
- ``hostpath:///ABS/PATH``: a folder of the node (single-node clusters such as kind or
  minikube; a hostPath volume breaks the restricted Pod Security profile, so namespaces
  enforcing it refuse the Job).

The input is a file or a folder of files; the output is a folder (one output file per
input file, as the image's batch runner writes them). The input's volume is mounted
read-only at ``/batch/in``, the output's at ``/batch/out`` (the same claim may be both).
Object storage (s3://, gs://, az://) is not supported on this target.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any

from deployer.providers import UsageError

IN_ROOT = "/batch/in"
OUT_ROOT = "/batch/out"
_CLAIM = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet", ".ndjson")


@dataclass(frozen=True)
class Place:
    """One URI as a volume and a path inside it."""

    uri: str
    claim: str | None  # a PVC, or None for a hostPath
    host_folder: str | None  # the hostPath volume's folder
    path: str  # inside the volume ("" for its root)

    def volume(self, name: str, *, output: bool) -> dict[str, Any]:
        if self.claim is not None:
            return {"name": name, "persistentVolumeClaim": {"claimName": self.claim}}
        kind = "DirectoryOrCreate" if output else "Directory"
        return {"name": name, "hostPath": {"path": self.host_folder, "type": kind}}

    def inside(self, root: str) -> str:
        """The path the runner is given, under the mount ``root``."""
        return posixpath.join(root, self.path) if self.path else root


def parse(uri: str, field: str) -> Place:
    """``pvc://`` or ``hostpath://`` as a Place; UsageError naming ``field`` otherwise."""
    scheme, sep, rest = uri.partition("://")
    expected = "expected pvc://CLAIM/PATH or hostpath:///ABSOLUTE/PATH"
    if not sep:
        raise UsageError(f"{field}: {uri!r}: a Kubernetes batch job reads volumes: {expected}")
    if scheme == "pvc":
        claim, _, path = rest.partition("/")
        if not _CLAIM.match(claim):
            raise UsageError(f"{field}: {uri!r}: {claim!r} is not a claim name; {expected}")
        clean = posixpath.normpath("/" + path).lstrip("/")
        if ".." in path.split("/"):
            raise UsageError(f"{field}: {uri!r}: '..' is not allowed in the path")
        return Place(uri, claim, None, "" if clean == "." else clean)
    if scheme == "hostpath":
        if not rest.startswith("/") or ".." in rest.split("/"):
            raise UsageError(f"{field}: {uri!r}: {expected}")
        full = posixpath.normpath(rest)
        if full.lower().endswith(_SUFFIXES):  # a file: its folder is the volume
            return Place(uri, None, posixpath.dirname(full), posixpath.basename(full))
        return Place(uri, None, full, "")
    raise UsageError(
        f"{field}: {uri!r}: {scheme}:// is not supported by a Kubernetes batch job; {expected}"
    )


def mounts(input_place: Place, output_place: Place) -> tuple[list[Any], list[Any]]:
    """(volumeMounts, volumes) of the runner's container."""
    same = (input_place.claim, input_place.host_folder) == (
        output_place.claim,
        output_place.host_folder,
    )
    volumes = [output_place.volume("batch-out", output=True)]
    mounted: list[dict[str, Any]] = [{"name": "batch-out", "mountPath": OUT_ROOT}]
    if same:
        mounted.append({"name": "batch-out", "mountPath": IN_ROOT, "readOnly": True})
    else:
        volumes.append(input_place.volume("batch-in", output=False))
        mounted.append({"name": "batch-in", "mountPath": IN_ROOT, "readOnly": True})
    mounted.append({"name": "tmp", "mountPath": "/tmp"})
    volumes.append({"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}})
    return mounted, volumes
