"""A small fake of Cloud Storage's JSON API on 127.0.0.1: bucket and object metadata
(``GET /storage/v1/b/B``, ``GET /storage/v1/b/B/o/O``) and the media download
(``GET /download/storage/v1/b/B/o/O?alt=media``, honouring ``Range``). The client
reaches it through STORAGE_EMULATOR_HOST. Every request is recorded, and one the real
API would not take (another path, a download without ``alt=media``) is answered 400."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

_OBJECT = re.compile(r"^/(download/)?storage/v1/b/([^/]+)/o/([^/]+)$")
_BUCKET = re.compile(r"^/storage/v1/b/([^/]+)$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class Request:
    method: str
    path: str  # still percent-encoded, as sent
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class FakeGcs:
    """Buckets of objects, and the requests the fake received."""

    objects: dict[str, dict[str, bytes]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeGcs:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, name="fake-gcs", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = parse_qs(parts.query)
        self.requests.append(Request("GET", parts.path, query, dict(handler.headers.items())))
        bucket_match = _BUCKET.match(parts.path)
        if bucket_match:
            name = unquote(bucket_match.group(1))
            if name not in self.objects:
                return self._json(handler, 404, _error(404, f"bucket {name} not found"))
            return self._json(handler, 200, {"kind": "storage#bucket", "name": name, "id": name})
        match = _OBJECT.match(parts.path)
        if not match:
            return self._json(handler, 400, _error(400, f"unexpected path {parts.path}"))
        download, bucket, name = (
            bool(match.group(1)),
            unquote(match.group(2)),
            unquote(match.group(3)),
        )
        if download != (query.get("alt") == ["media"]):
            return self._json(handler, 400, _error(400, "media downloads need alt=media"))
        data = self.objects.get(bucket, {}).get(name)
        if data is None:
            return self._json(handler, 404, _error(404, f"no object {name} in {bucket}"))
        if not download:
            metadata = {
                "kind": "storage#object",
                "bucket": bucket,
                "name": name,
                "size": str(len(data)),
                "generation": "1",
                "contentType": "text/csv",
            }
            return self._json(handler, 200, metadata)
        self._media(handler, data)

    def _media(self, handler: BaseHTTPRequestHandler, data: bytes) -> None:
        status, body = 200, data
        requested = handler.headers.get("range")
        extra: dict[str, str] = {}
        if requested:
            found = _RANGE.match(requested)
            if not found:
                return self._json(handler, 416, _error(416, f"bad range {requested}"))
            start = int(found.group(1))
            end = min(int(found.group(2)) if found.group(2) else len(data) - 1, len(data) - 1)
            if start >= len(data):
                return self._json(handler, 416, _error(416, "range not satisfiable"))
            status, body = 206, data[start : end + 1]
            extra["content-range"] = f"bytes {start}-{end}/{len(data)}"
        handler.send_response(status)
        handler.send_header("content-type", "application/octet-stream")
        handler.send_header("content-length", str(len(body)))
        for key, value in extra.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)

    @staticmethod
    def _json(handler: BaseHTTPRequestHandler, status: int, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def _error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "errors": [{"message": message}]}}
