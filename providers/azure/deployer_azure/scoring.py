"""What a client of an online endpoint's scoring URI authenticates with.

azure-ai-ml's ``online_endpoints.get_keys(name)`` answers per the endpoint's auth mode:
``EndpointAuthKeys`` (``primary_key``, ``secondary_key``) for ``key``,
``EndpointAuthToken`` (``access_token``, ``expiry_time_utc`` and
``refresh_after_time_utc`` in epoch seconds, 0 when not given) for ``aml_token``, and
``EndpointAadToken`` (``access_token``, ``expiry_time_utc``) for Microsoft Entra tokens.
Either way the client sends ``Authorization: Bearer <secret>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import urlsplit

from deployer.providers import DeployerError

EXPIRY_MARGIN = timedelta(seconds=60)  # a token this close to expiry is fetched again


@dataclass(frozen=True)
class ScoringSecret:
    """A key or token for one scoring URI, and when it stops working. The secret itself is
    left out of ``repr`` (and so out of logs and tracebacks that print the object)."""

    scoring_uri: str
    kind: Literal["key", "token"]
    value: str = field(repr=False)
    expires_at: datetime | None = None  # None: keys do not expire (they can be regenerated)
    refresh_at: datetime | None = None  # the service's own "refresh after", when it says

    @property
    def authorization(self) -> str:
        return f"Bearer {self.value}"

    def expired(self, margin: timedelta = EXPIRY_MARGIN) -> bool:
        if self.expires_at is None:
            return False
        return datetime.now(timezone.utc) >= self.expires_at - margin


def from_keys(endpoint: str, scoring_uri: str, keys: Any) -> ScoringSecret:
    """The secret in a ``get_keys`` answer: the primary key, or the token and its times."""
    key = getattr(keys, "primary_key", None) or getattr(keys, "secondary_key", None)
    if key:
        return ScoringSecret(scoring_uri, "key", str(key))
    token = getattr(keys, "access_token", None)
    if token:
        return ScoringSecret(
            scoring_uri,
            "token",
            str(token),
            utc(getattr(keys, "expiry_time_utc", None)),
            utc(getattr(keys, "refresh_after_time_utc", None)),
        )
    raise DeployerError(
        f"endpoint {endpoint} gave neither a key nor a token",
        hint="check the endpoint's auth mode (key or aml_token) in the Azure portal",
    )


def utc(value: Any) -> datetime | None:
    """An aware datetime from epoch seconds (or a datetime); None for 0, None or junk."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        return datetime.fromtimestamp(float(value), timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def same_uri(left: str | None, right: str | None) -> bool:
    """Whether two URLs name the same scoring route (scheme, host, port and path)."""
    if not left or not right:
        return False
    a, b = urlsplit(left), urlsplit(right)
    default = {"https": 443, "http": 80}
    return (
        a.scheme.lower() == b.scheme.lower()
        and (a.hostname or "").lower() == (b.hostname or "").lower()
        and (a.port or default.get(a.scheme.lower())) == (b.port or default.get(b.scheme.lower()))
        and a.path.rstrip("/") == b.path.rstrip("/")
    )
