"""The router's event logs: JSON lines on stderr, and the credential libraries capped at
INFO (botocore logs the session token at DEBUG)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import orjson

# Libraries that print credentials at DEBUG (botocore logs the canonical request, session
# token included): capped at INFO in a router, whatever the root level.
CREDENTIAL_LOGGERS = (
    "botocore",
    "boto3",
    "google.auth",
    "urllib3",
    "requests_oauthlib",
    "azure",
    "msal",
)


class JsonFormatter(logging.Formatter):
    """Event logs as JSON lines: time, level, message and the record's extra fields."""

    _standard = frozenset(vars(logging.makeLogRecord({})))

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        data.update({k: v for k, v in vars(record).items() if k not in self._standard})
        if record.exc_info and os.environ.get("DEPLOYER_DEBUG"):
            data["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def quiet_credential_loggers() -> None:
    for name in CREDENTIAL_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:
            logger.setLevel(logging.INFO)


def configure_logging() -> None:
    logger = logging.getLogger("deployer.router")
    if not any(getattr(h, "_deployer", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._deployer = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
