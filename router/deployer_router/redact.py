"""Backend URLs as the router shows them (health route, logs): credentials hidden.

``https://user:pass@host/p?sig=abc&api-version=1`` becomes
``https://***@host/p?sig=***&api-version=1``: the user-info part is replaced whole, and so
is the value of every query parameter whose name says it holds a secret (token, key,
signature, password, credential, session, code ...).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
_SECRET_PARAM = re.compile(
    r"(token|key|sig|signature|secret|pass|pwd|auth|credential|session|code|jwt|sas)",
    re.IGNORECASE,
)


def redact_url(url: str) -> str:
    """``url`` without credentials (user-info, secret-looking query values)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    query = (
        "&".join(_redact_param(param) for param in parts.query.split("&")) if parts.query else ""
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _redact_param(param: str) -> str:
    name, equals, _ = param.partition("=")
    if equals and _SECRET_PARAM.search(name):
        return f"{name}={MASK}"
    return param


def backend_label(name: str, url: str) -> dict[str, str]:
    """What a log line about one backend carries: its name and redacted URL."""
    return {"backend": name, "backend_url": redact_url(url)}
