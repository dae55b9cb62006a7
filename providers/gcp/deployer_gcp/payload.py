"""Request bodies for Vertex's predict contract.

rawPredict hands the body to the container's predict route unchanged, and the image's
Vertex route (deployer/serving/vertex.py) accepts ``{"instances": [...], ...}`` only. A
bare JSON array of rows, as the smoke test and the router send, is wrapped so that every
body the other clouds accept also works here.
"""

from __future__ import annotations


def for_vertex(body: bytes, content_type: str) -> bytes:
    """``body``, with a bare JSON array wrapped as ``{"instances": ARRAY}``."""
    if "json" not in content_type.lower() or not body.lstrip().startswith(b"["):
        return body
    return b'{"instances":' + body + b"}"
