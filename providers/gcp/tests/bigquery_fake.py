"""A small fake of BigQuery's REST API v2 on 127.0.0.1, holding the tables Vertex AI's
request-response logging writes, for the real google-cloud-bigquery client.

It serves ``tables.get`` (``GET /bigquery/v2/projects/P/datasets/D/tables/T``) and
``tabledata.list`` (``GET .../tables/T/data``: ``maxResults``, ``pageToken``,
``startIndex``, ``formatOptions.useInt64Timestamp``), rows encoded as BigQuery encodes
them (``{"f": [{"v": ...}]}``, REPEATED fields as ``[{"v": ...}]``, NUMERIC as a string,
TIMESTAMP as microseconds since the epoch with useInt64Timestamp, else float seconds).
Every request is recorded; one without the expected bearer token is answered 401, an
unknown path 400, an unknown table 404, as the real API does.

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

_TABLE = re.compile(r"^/bigquery/v2/projects/([^/]+)/datasets/([^/]+)/tables/([^/]+)(/data)?$")
MAX_PAGE = 100_000  # tabledata.list answers at most this many rows per page (10 MB too)

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


@dataclass
class FakeBigQuery:
    """Tables by ``project.dataset.table`` (rows as dicts), and the requests received."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    expected_token: str | None = None
    page_size: int = 2  # small, so tests page through the real client's iterator
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
        with self.lock:
            self.requests.append(Request(parts.path, query, headers))
            token = self.expected_token
        if token is not None and headers.get("authorization") != f"Bearer {token}":
            return _json(handler, 401, _error(401, "Request had invalid credentials."))
        match = _TABLE.match(parts.path)
        if not match:
            return _json(handler, 400, _error(400, f"unexpected path {parts.path}"))
        project, dataset, table = (unquote(match.group(i)) for i in (1, 2, 3))
        table_id = f"{project}.{dataset}.{table}"
        with self.lock:
            rows = self.tables.get(table_id)
            rows = None if rows is None else list(rows)
        if rows is None:
            return _json(handler, 404, _error(404, f"Not found: Table {table_id}"))
        if not match.group(4):
            return _json(handler, 200, _table(project, dataset, table, len(rows)))
        try:
            page = _page(query, rows, self.page_size)
        except ValueError as exc:
            return _json(handler, 400, _error(400, str(exc)))
        _json(handler, 200, page)


def _table(project: str, dataset: str, table: str, count: int) -> dict[str, Any]:
    return {
        "kind": "bigquery#table",
        "id": f"{project}:{dataset}.{table}",
        "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
        "schema": {"fields": LOGGING_SCHEMA},
        "numRows": str(count),
        "type": "TABLE",
        "location": "US",
    }


def _page(query: dict[str, list[str]], rows: list[dict[str, Any]], size: int) -> dict[str, Any]:
    """One page of tabledata.list (raises ValueError for a request BigQuery refuses)."""
    allowed = {
        "maxResults",
        "pageToken",
        "startIndex",
        "selectedFields",
        "formatOptions.useInt64Timestamp",
        "prettyPrint",
    }
    unknown = set(query) - allowed
    if unknown:
        raise ValueError(f"unknown parameters {sorted(unknown)}")
    start = int(query.get("pageToken", query.get("startIndex", ["0"]))[0])
    limit = min(int(query.get("maxResults", [str(MAX_PAGE)])[0]), MAX_PAGE, size)
    int64 = query.get("formatOptions.useInt64Timestamp", ["false"])[0].lower() == "true"
    chosen = rows[start : start + limit]
    page: dict[str, Any] = {
        "kind": "bigquery#tableDataList",
        "totalRows": str(len(rows)),
        "rows": [{"f": [_cell(row, f, int64) for f in LOGGING_SCHEMA]} for row in chosen],
    }
    if start + limit < len(rows):
        page["pageToken"] = str(start + limit)
    return page


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


def _error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "errors": [{"message": message}]}}
