"""``Content-Encoding`` of request bodies and ``Accept-Encoding`` of OIP answers.

tritonclient's ``request_compression_algorithm`` sends gzip or deflate (zlib) bodies. The
decoded size counts against the body limit as it is inflated: a zip bomb gets 413.
"""

from __future__ import annotations

import zlib

from deployer.serving.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

# wbits: gzip framing; zlib framing (what "deflate" means in HTTP); raw deflate.
_GZIP, _ZLIB, _RAW = 16 + zlib.MAX_WBITS, zlib.MAX_WBITS, -zlib.MAX_WBITS
_CHUNK = 64 * 1024
# Smaller answers are not worth the CPU (httpx and others send Accept-Encoding: gzip on
# every request): they go out as they are, which Accept-Encoding allows.
MIN_COMPRESS_BYTES = 1024


def decode_body(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body with every listed encoding undone (last applied, first undone)."""
    if not content_encoding:
        return body
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, _GZIP, coding, limit)
        elif coding == "deflate":
            try:
                body = _inflate(body, _ZLIB, coding, limit)
            except BadRequest:  # some clients send raw deflate without the zlib header
                body = _inflate(body, _RAW, coding, limit)
        else:
            raise UnsupportedMediaType(
                f"unsupported Content-Encoding {coding!r}; send gzip, deflate or identity",
                headers={"accept-encoding": "gzip, deflate"},
            )
    return body


def _inflate(body: bytes, wbits: int, coding: str, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    parts: list[bytes] = []
    size = 0
    data = body
    try:
        while data:
            part = inflater.decompress(data, _CHUNK)
            size += len(part)
            if size > limit:
                raise PayloadTooLarge(f"the {coding}-decoded body is over the {limit}-byte limit")
            parts.append(part)
            data = inflater.unconsumed_tail
        part = inflater.flush()
    except zlib.error as exc:
        raise BadRequest(f"body is not valid {coding} data: {exc}") from None
    if not inflater.eof:
        raise BadRequest(f"body is not valid {coding} data: it ends early")
    size += len(part)
    if size > limit:
        raise PayloadTooLarge(f"the {coding}-decoded body is over the {limit}-byte limit")
    parts.append(part)
    return b"".join(parts)


def response_encoding(accept_encoding: str | None) -> str | None:
    """gzip or deflate if the client accepts it (q > 0), gzip first; else None."""
    if not accept_encoding:
        return None
    accepted: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        quality = 1.0
        key, _, value = params.strip().partition("=")
        if key.strip() == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
        accepted[coding.strip().lower()] = quality
    for coding in ("gzip", "deflate"):
        if accepted.get(coding, 0.0) > 0:
            return coding
    return None


def encode_body(body: bytes, coding: str) -> bytes:
    """``body`` compressed as gzip or deflate (zlib framing)."""
    wbits = _GZIP if coding == "gzip" else _ZLIB
    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return compressor.compress(body) + compressor.flush()
