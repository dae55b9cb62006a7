"""The request being answered, for what observes predictions (capture, drift metrics):
its id (the ``X-Request-Id`` header, else a new one, always echoed in the answer) and
whether its predictions were already observed (an OIP request asking for several
outputs predicts once per output: observed once)."""

from __future__ import annotations

import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "x-request-id"
MAX_REQUEST_ID = 128  # longer (or unprintable) ids are replaced by a new one


class RequestState:
    """One request's id and whether its predictions were observed."""

    __slots__ = ("observed", "request_id")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.observed = False


_CURRENT: ContextVar[RequestState | None] = ContextVar("deployer_request", default=None)


def begin(headers: dict[str, str]) -> str:
    """Start observing a request: its id, from ``X-Request-Id`` when usable."""
    given = headers.get(REQUEST_ID_HEADER)
    if given and len(given) <= MAX_REQUEST_ID and given.isprintable():
        request_id = given
    else:
        request_id = uuid.uuid4().hex
    _CURRENT.set(RequestState(request_id))
    return request_id


def claim() -> str | None:
    """The current request's id the first time its predictions are observed, else None
    (no request, or already observed)."""
    state = _CURRENT.get()
    if state is None or state.observed:
        return None
    state.observed = True
    return state.request_id
