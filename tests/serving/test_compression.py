"""Content-Encoding of request bodies (the decoded size counts) and Accept-Encoding."""

from __future__ import annotations

import gzip
import zlib

import pytest

from deployer.serving.compression import decode_body, encode_body, response_encoding
from deployer.serving.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

BODY = b'{"inputs": []}' * 100


@pytest.mark.parametrize(
    ("coding", "encoded"),
    [
        ("gzip", gzip.compress(BODY)),
        ("x-gzip", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),
        ("deflate", zlib.compress(BODY)[2:-4]),  # raw deflate, no zlib header
        ("identity", BODY),
        ("gzip, identity", gzip.compress(BODY)),
        ("deflate, gzip", gzip.compress(zlib.compress(BODY))),  # last applied, first undone
        (None, BODY),
    ],
)
def test_decode_body(coding: str | None, encoded: bytes) -> None:
    assert decode_body(encoded, coding, len(BODY)) == BODY


def test_the_decoded_size_is_limited() -> None:
    bomb = gzip.compress(b"\0" * 10_000_000)
    with pytest.raises(PayloadTooLarge, match="gzip-decoded body is over the 1000-byte limit"):
        decode_body(bomb, "gzip", 1000)
    with pytest.raises(PayloadTooLarge):
        decode_body(zlib.compress(BODY), "deflate", len(BODY) - 1)


def test_unknown_and_corrupt_encodings() -> None:
    with pytest.raises(UnsupportedMediaType, match="'br'"):
        decode_body(b"x", "br", 100)
    with pytest.raises(BadRequest, match="not valid gzip"):
        decode_body(b"garbage", "gzip", 100)
    with pytest.raises(BadRequest, match="ends early"):
        decode_body(gzip.compress(BODY)[:20], "gzip", 10_000)


@pytest.mark.parametrize(
    ("header", "coding"),
    [
        (None, None),
        ("", None),
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("br, deflate;q=0.5", "deflate"),
        ("gzip;q=0, deflate", "deflate"),
        ("identity", None),
        ("GZIP", "gzip"),
    ],
)
def test_response_encoding(header: str | None, coding: str | None) -> None:
    assert response_encoding(header) == coding


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_encode_body_round_trips(coding: str) -> None:
    assert decode_body(encode_body(BODY, coding), coding, len(BODY)) == BODY
