"""One HTTP client for the local target's calls on 127.0.0.1 (the front, the model
containers): made once per process and its connections kept. A new httpx client per call
costs tens of milliseconds (it builds a TLS context even for plain http), which a status
check or a batch job's every request would pay."""

from __future__ import annotations

import threading

import httpx

TIMEOUT_S = 65.0  # a prediction's (calls that must be quick pass their own)
_lock = threading.Lock()
_client: httpx.Client | None = None


def client() -> httpx.Client:
    """The process's loopback client."""
    global _client
    with _lock:
        if _client is None:
            _client = httpx.Client(timeout=TIMEOUT_S)
        return _client
