"""HTTP errors the handlers raise; the app turns each into ``{"error": message}``."""

from __future__ import annotations


class HTTPError(Exception):
    """An error answer: status code and a message for the client."""

    status = 400

    def __init__(
        self, message: str, status: int | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        if status is not None:
            self.status = status


class BadRequest(HTTPError):
    status = 400


class NotFound(HTTPError):
    status = 404


class MethodNotAllowed(HTTPError):
    status = 405


class NotAcceptable(HTTPError):
    status = 406


class PayloadTooLarge(HTTPError):
    status = 413


class ResponseTooLarge(HTTPError):
    """The answer would be over the response limit: the client should ask for less."""

    status = 413


class ClientDisconnected(Exception):
    """The client went away (or was cut off by a read timeout) before its body arrived."""


class UnsupportedMediaType(HTTPError):
    status = 415


class NotReady(HTTPError):
    status = 503
