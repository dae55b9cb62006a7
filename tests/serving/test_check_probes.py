"""`deployer check`'s OIP probe, run against a real server process: it passes ours, and it
fails a server that answers the health routes with bodies other than the spec's."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import httpx
import pytest
from serving_support import SklearnServer

from deployer.image.conformance import (
    Failure,
    Sample,
    binary_infer_body,
    check_oip,
    discover_sample,
)


def test_the_oip_probe_passes_our_server(sklearn_server: SklearnServer) -> None:
    url = sklearn_server.server.url
    with httpx.Client(timeout=30) as http:
        sample = discover_sample(http, url, "iris")
        detail = check_oip(http, url, sample)
    assert detail == "health bodies, metadata, infer (JSON, binary tensors, gzip); /metrics"


def test_the_binary_body_is_a_json_header_then_little_endian_values() -> None:
    body, length = binary_infer_body(Sample("m", [[1.5, 2.0], [3.0, 4.0]], "FP32"))
    header = json.loads(body[:length])
    assert header["inputs"][0]["parameters"] == {"binary_data_size": 16}
    assert "data" not in header["inputs"][0]
    assert body[length:] == struct.pack("<4f", 1.5, 2.0, 3.0, 4.0)


@pytest.fixture
def old_style_server() -> Iterator[str]:
    """Answers every GET with 200 ``{"status": "ready"}``, as the image once did."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            payload = b'{"status": "ready"}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_the_oip_probe_fails_health_bodies_other_than_the_specs(old_style_server: str) -> None:
    with httpx.Client(timeout=10) as http, pytest.raises(Failure) as failed:
        check_oip(http, old_style_server, Sample("iris", [[0, 0]], "FP64"))
    assert "answered {'status': 'ready'}, the spec's body is {'live': True}" in str(failed.value)
