"""A small fake of BigQuery's REST API v2 on 127.0.0.1, holding the tables Vertex AI's
request-response logging writes, for the real google-cloud-bigquery client.

It serves ``jobs.query`` (``POST /bigquery/v2/projects/P/queries``) for the one query
deployer sends (``QUERY``:
the logging columns of one table, optionally ``WHERE logging_time >= @since`` with a
TIMESTAMP parameter, ``ORDER BY logging_time``; GoogleSQL only, anything else 400). Rows
are encoded as BigQuery encodes them (``{"f": [{"v": ...}]}``, REPEATED fields as
``[{"v": ...}]``, NUMERIC as a string, TIMESTAMP as microseconds since the epoch with
useInt64Timestamp, else float seconds). Every request is recorded; one without the
expected bearer token is answered 401, an unknown path 400, an unknown table 404, as the
real API does.

The logging table's schema is Vertex's (online prediction logging): endpoint,
deployed_model_id, logging_time, request_id, request_payload, response_payload.
"""

from __future__ import annotations

import datetime
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

_QUERIES = re.compile(r"^/bigquery/v2/projects/([^/]+)/queries$")
QUERY = re.compile(
    r"^SELECT endpoint, deployed_model_id, logging_time, request_id, request_payload, "
    r"response_payload FROM `([a-z][a-z0-9-]{4,28}[a-z0-9])\.(\w{1,1024})\.([\w-]{1,1024})`"
    r"( WHERE logging_time >= @since)? ORDER BY logging_time$"
)

LOGGING_SCHEMA: list[dict[str, str]] = [
    {"name": "endpoint", "type": "STRING", "mode": "NULLABLE"},
    {"name": "deployed_model_id", "type": "STRING", "mode": "NULLABLE"},
    {"name": "logging_time", "type": "TIMESTAMP", "mode": "NULLABLE"},
    {"name": "request_id", "type": "NUMERIC", "mode": "NULLABLE"},
    {"name": "request_payload", "type": "STRING", "mode": "REPEATED"},
    {"name": "response_payload", "type": "STRING", "mode": "REPEATED"},
]


@dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any = None


@dataclass
class FakeBigQuery:
    """Tables by ``project.dataset.table`` (rows as dicts), and the requests received."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    expected_token: str | None = None
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeBigQuery:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.answer(self)  # answered 400: deployer reads through jobs.query only

            def do_POST(self) -> None:
                fake.answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, name="fake-bq", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.tables.clear()
            self.requests.clear()
            self.expected_token = None

    def append(self, table: str, row: dict[str, Any]) -> None:
        """Append a row to ``table`` (created when missing), as Vertex's logger does."""
        with self.lock:
            self.tables.setdefault(table, []).append(row)

    def rows(self, table: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.tables.get(table, []))

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = parse_qs(parts.query)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        body = None
        if handler.command == "POST":
            length = int(handler.headers.get("content-length") or 0)
            body = json.loads(handler.rfile.read(length) or b"null")
        with self.lock:
            self.requests.append(Request(parts.path, query, headers, body))
            token = self.expected_token
        if token is not None and headers.get("authorization") != f"Bearer {token}":
            return _json(handler, 401, _error(401, "Request had invalid credentials."))
        if handler.command == "POST":
            found = _QUERIES.match(parts.path)
            if not found:
                return _json(handler, 400, _error(400, f"unexpected POST {parts.path}"))
            try:
                status, document = self.run_query(unquote(found.group(1)), body)
            except ValueError as exc:
                status, document = 400, _error(400, str(exc))
            return _json(handler, status, document)
        _json(handler, 400, _error(400, f"unexpected {handler.command} {parts.path}"))

    def run_query(self, project: str, body: Any) -> tuple[int, dict[str, Any]]:
        """jobs.query for ``QUERY``: (status, QueryResponse); ValueError for a bad request."""
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise ValueError("query is required")
        if body.get("useLegacySql", True) is not False:
            raise ValueError("expected GoogleSQL (useLegacySql: false)")
        match = QUERY.match(body["query"])
        if not match:
            raise ValueError(f"the fake answers deployer's query only, got {body['query']!r}")
        table_id = ".".join(match.group(i) for i in (1, 2, 3))
        since = None
        if match.group(4):
            since = _since(body.get("queryParameters"))
        with self.lock:
            rows = self.tables.get(table_id)
            rows = None if rows is None else list(rows)
        if rows is None:
            return 404, _error(404, f"Not found: Table {table_id} was not found in location US")
        chosen = sorted(
            (r for r in rows if since is None or r["logging_time"] >= since),
            key=lambda r: r["logging_time"],
        )
        int64 = bool(body.get("formatOptions", {}).get("useInt64Timestamp"))
        return 200, {
            "kind": "bigquery#queryResponse",
            "schema": {"fields": LOGGING_SCHEMA},
            "jobReference": {"projectId": project, "jobId": "job_fake", "location": "US"},
            "totalRows": str(len(chosen)),
            "rows": [{"f": [_cell(r, f, int64) for f in LOGGING_SCHEMA]} for r in chosen],
            "jobComplete": True,
            "cacheHit": False,
        }


def _since(parameters: Any) -> datetime.datetime:
    """The @since TIMESTAMP query parameter (ValueError when missing or mistyped)."""
    found = [p for p in parameters or [] if p.get("name") == "since"]
    if len(found) != 1 or found[0].get("parameterType", {}).get("type") != "TIMESTAMP":
        raise ValueError("query parameter @since: expected one TIMESTAMP parameter")
    text = found[0].get("parameterValue", {}).get("value", "")
    value = datetime.datetime.fromisoformat(text.replace(" ", "T").replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def _cell(row: dict[str, Any], spec: dict[str, str], int64: bool) -> dict[str, Any]:
    value = row.get(spec["name"])
    if spec["mode"] == "REPEATED":
        return {"v": [{"v": str(v)} for v in value or []]}
    if value is None:
        return {"v": None}
    if spec["type"] == "TIMESTAMP":
        assert isinstance(value, datetime.datetime)
        micros = round(value.timestamp() * 1_000_000)
        return {"v": str(micros) if int64 else f"{micros / 1_000_000:.6f}"}
    return {"v": str(value)}


def _json(handler: BaseHTTPRequestHandler, status: int, document: dict[str, Any]) -> None:
    body = json.dumps(document).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


_REASONS = {400: "invalid", 401: "unauthorized", 404: "notFound"}


def _error(code: int, message: str) -> dict[str, Any]:
    """An error as BigQuery answers it (the client reads ``errors[0].reason``)."""
    detail = {"message": message, "domain": "global", "reason": _REASONS.get(code, "backendError")}
    return {"error": {"code": code, "message": message, "errors": [detail], "status": ""}}
