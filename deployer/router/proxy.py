"""The request path: pick a backend, sign, forward, retry, answer.

Every request takes the current ``Snapshot`` (one manifest's backends, balancer and
settings) once and keeps it to the end, retries included, so a reload never changes a
request's plan half way. The body goes through unchanged, and so does the answer, with
``x-deployer-backend: NAME`` added (and ``x-deployer-retries: N`` when it took retries).

Where a request goes (the URL mapping):

- ``url_mode: base`` (plain-HTTP backends: Kubernetes Services, local containers, any
  HTTP server): the request's path and query are appended to the backend URL, so
  ``POST /v2/models/iris/infer`` reaches ``URL/v2/models/iris/infer``;
- ``url_mode: fixed`` (managed endpoints: SageMaker ``.../endpoints/E/invocations``,
  Vertex ``...:rawPredict``, the Azure ML scoring URI): every request goes to the URL
  itself, whatever its path; the image behind it accepts the same bodies on that route.

When no backend can answer, the router answers 503 itself with a JSON body naming each
backend tried and why, or each backend and why it is unavailable. When the last attempt
got an answer from a backend (a 500 from the model, say) that answer is returned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from time import monotonic
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from deployer.router.client import Pool, UpstreamError
from deployer.router.client import Response as Answer
from deployer.router.health import HealthState
from deployer.router.metrics import BackendStats, RouterStats
from deployer.router.policy import FAILURE_PENALTY, Balancer, observe_latency
from deployer.router.retry import RetryBudget, status_retryable
from deployer.router.server import Request, Response

if TYPE_CHECKING:
    from deployer.router.accesslog import AccessLog
    from deployer.router.auth import Signer
    from deployer.router.manifest import BackendConfig, Manifest

BACKEND_HEADER = b"x-deployer-backend"
RETRIES_HEADER = b"x-deployer-retries"
INTERNAL_PREFIX = b"/-/router/"
# Request headers that belong to one connection, or that the router sets itself.
_REQUEST_DROP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        b"expect",
        b"proxy-connection",
    }
)
_RESPONSE_DROP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
    }
)
_JSON = [(b"content-type", b"application/json")]
_UNAVAILABLE_HEADERS = [*_JSON, (b"retry-after", b"1")]
log = logging.getLogger("deployer.router")


class Upstream:
    """One backend as the router runs it: settings, health, pool, signer, counters."""

    __slots__ = (
        "available",
        "base_path",
        "config",
        "current",
        "ewma",
        "ewma_at",
        "fixed_target",
        "header",
        "inflight",
        "key",
        "name",
        "origin",
        "pool",
        "signer",
        "state",
        "stats",
        "strip_authorization",
        "tier",
        "weight",
    )

    def __init__(self, config: BackendConfig, manifest: Manifest, signer: Signer | None) -> None:
        self.key = identity(config)
        self.name = config.name
        self.header = config.name.encode()
        parts = urlsplit(config.url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        path = parts.path.encode() or b"/"
        if parts.query:
            path += b"?" + parts.query.encode()
        self.fixed_target = path if config.mode == "fixed" else None
        self.base_path = parts.path.rstrip("/").encode()
        timeouts = manifest.timeouts
        self.pool = Pool(config.url, connect_timeout=timeouts.connect, idle_timeout=timeouts.idle)
        self.signer = None if config.auth.kind == "none" else signer
        self.strip_authorization = config.auth.kind != "none"
        self.state = HealthState(config.weight, manifest.health.passive)
        self.available = self.state.available
        self.stats = BackendStats()
        self.current = 0.0
        self.ewma = 0.0
        self.ewma_at = 0.0
        self.inflight = 0
        self.config = config
        self.weight = config.weight
        self.tier = config.tier

    def update(self, config: BackendConfig, manifest: Manifest) -> None:
        """Take a reloaded entry with the same identity (weight, tier, health settings)."""
        self.config = config
        self.weight = config.weight
        self.tier = config.tier
        self.current = 0.0
        self.state.set_weight(config.weight, manifest.health.passive)
        self.pool.connect_timeout = manifest.timeouts.connect
        self.pool.idle_timeout = manifest.timeouts.idle

    def target(self, request_target: bytes) -> bytes:
        if self.fixed_target is not None:
            return self.fixed_target
        return self.base_path + request_target if self.base_path else request_target

    def url(self, target: bytes) -> str:
        return self.origin + target.decode("latin-1")


def identity(config: BackendConfig) -> tuple[Any, ...]:
    """What must not change for a reload to keep a backend's pool, health and counters."""
    return (
        config.name,
        config.provider,
        config.url,
        config.mode,
        orjson.dumps(config.auth.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS),
        orjson.dumps(config.target, option=orjson.OPT_SORT_KEYS),
        config.health_source,
        config.health_path,
        config.synthetic.model_dump_json() if config.synthetic else "",
    )


class Snapshot:
    """One manifest as the router runs it."""

    __slots__ = (
        "attempts",
        "balancer",
        "budget",
        "by_name",
        "manifest",
        "metrics_path",
        "retry_on",
        "timeout_request",
        "timeout_total",
        "upstreams",
    )

    def __init__(self, manifest: Manifest, upstreams: list[Upstream], budget: RetryBudget) -> None:
        self.manifest = manifest
        self.upstreams = upstreams
        self.by_name = {u.name: u for u in upstreams}
        self.balancer: Balancer[Upstream] = Balancer(upstreams, manifest.policy)
        self.budget = budget
        self.attempts = manifest.retries.attempts
        self.retry_on = frozenset(manifest.retries.retry_on)
        self.timeout_request = manifest.timeouts.request
        self.timeout_total = manifest.timeouts.total
        self.metrics_path = manifest.metrics_path.encode()


class Proxy:
    """The request handler: internal routes, else forward with retries."""

    def __init__(
        self, snapshot: Snapshot, stats: RouterStats, access_log: AccessLog | None, internal: Any
    ) -> None:
        self.snapshot = snapshot
        self.stats = stats
        self.access_log = access_log
        self.internal = internal  # async (Request, Snapshot) -> Response | None

    async def __call__(self, request: Request) -> Response:
        snap = self.snapshot
        target = request.target
        if target[:3] == b"/-/" or target.startswith(snap.metrics_path):
            answer: Response | None = await self.internal(request, snap)
            if answer is not None:
                return answer
        started = now = monotonic()
        snap.budget.record_request(started)
        upstream = snap.balancer.pick(started)
        response: Response | None = None
        if upstream is None:
            self.stats.no_backend += 1
            response, error = _unavailable(snap, [], [], "every backend is unavailable", now), None
            tried: list[Upstream] = []
        else:
            tried = [upstream]
            response, error, now = await self._forward(request, snap, tried, started)
        self.stats.finished(response.status, now - started)
        if self.access_log is not None:
            backend = tried[-1].name if tried and error is None else None
            self._log(request, response, backend, len(tried), now - started, error)
        return response

    async def _forward(
        self, request: Request, snap: Snapshot, tried: list[Upstream], started: float
    ) -> tuple[Response, str | None, float]:
        """Attempts until an answer that is not retried, or a reason to stop:
        (response, why the router gave up or None, time of the end)."""
        headers = _forwarded_headers(request)
        upstream = tried[0]
        failures: list[dict[str, str]] = []
        last: Answer | None = None  # the last retryable answer of a backend
        now = started
        while True:
            timeout = min(snap.timeout_request, snap.timeout_total - (now - started))
            outcome = await attempt(upstream, request, headers, timeout, now)
            now = monotonic()
            if not isinstance(outcome, UpstreamError):
                last = outcome
                status = outcome.status
                if status < 429 or not status_retryable(status, snap.retry_on):
                    return _answer(outcome, upstream, len(tried), request.method), None, now
                failures.append({"backend": upstream.name, "error": f"HTTP {status}"})
            else:
                last = None
                failures.append({"backend": upstream.name, "error": f"{outcome.kind}: {outcome}"})
                if not _error_retryable(outcome, snap.retry_on):
                    reason = f"{outcome.kind} is not retried"
                    break
            if len(tried) >= snap.attempts:
                reason = f"all {snap.attempts} attempts failed"
                break
            if now - started >= snap.timeout_total:
                reason = f"the total timeout ({snap.timeout_total:g}s) is reached"
                break
            upstream = snap.balancer.pick(now, tried)  # type: ignore[assignment]
            if upstream is None:
                reason = "no other backend is available to retry on"
                break
            if not snap.budget.try_retry(now):
                self.stats.budget_exhausted += 1
                reason = "retry budget exhausted"
                break
            self.stats.retries += 1
            tried.append(upstream)
        if last is not None:  # the backend's own answer says more than ours would
            return _answer(last, tried[-1], len(tried), request.method), None, now
        return _unavailable(snap, tried, failures, reason, now), reason, now

    def _log(
        self,
        request: Request,
        response: Response,
        backend: str | None,
        attempts: int,
        seconds: float,
        error: str | None,
    ) -> None:
        assert self.access_log is not None
        self.access_log.write(
            (
                time.time(),
                request.method.decode("latin-1"),
                request.target.split(b"?", 1)[0].decode("latin-1"),
                response.status,
                backend,
                attempts,
                seconds * 1e3,
                len(request.body),
                len(response.body),
                request.client,
                error,
            )
        )


async def attempt(
    upstream: Upstream, request: Request, headers: bytes, timeout: float, started: float
) -> Answer | UpstreamError:
    """One try on one backend: sign, send, record the outcome in its health and counters."""
    target = upstream.target(request.target)
    if upstream.signer is not None:
        try:
            headers = _signed(upstream, request, target, headers)
        except Exception as exc:  # a signer bug or missing credentials: this backend fails
            error = UpstreamError("connect-failure", f"signing failed: {type(exc).__name__}")
            return error
    upstream.inflight += 1
    stats = upstream.stats
    stats.requests += 1
    try:
        response = await upstream.pool.request(
            request.method, target, headers, request.body, timeout
        )
    except UpstreamError as exc:
        now = monotonic()
        stats.error(exc.kind)
        if upstream.state.record_failure(now):
            _ejected(upstream, f"{exc.kind}: {exc}")
        observe_latency(upstream, FAILURE_PENALTY, now)
        return exc
    finally:
        upstream.inflight -= 1
    now = monotonic()
    elapsed = now - started
    status = response.status
    stats.answered(status, elapsed)
    if status >= 500:
        stats.error("5xx")
        if upstream.state.record_failure(now):
            _ejected(upstream, f"HTTP {status}")
        observe_latency(upstream, max(elapsed, FAILURE_PENALTY), now)
    else:
        if status == 429:
            stats.error("429")
        state = upstream.state
        if state.consecutive_failures or state.ejections:
            state.record_success()
        observe_latency(upstream, elapsed, now)
    return response


def _unavailable(
    snap: Snapshot, tried: list[Upstream], failures: list[dict[str, str]], reason: str, now: float
) -> Response:
    """503 from the router itself: what was tried, and why the others were not."""
    body: dict[str, Any] = {
        "error": "no backend could answer this request",
        "reason": reason,
        "attempts": failures,
    }
    if len(tried) < len(snap.upstreams):
        body["unavailable"] = {
            u.name: u.state.reason(now) or "available" for u in snap.upstreams if u not in tried
        }
    return Response(503, _UNAVAILABLE_HEADERS, orjson.dumps(body))


def _error_retryable(error: UpstreamError, conditions: frozenset[str]) -> bool:
    kind = error.kind
    return kind in conditions or (kind == "protocol" and "reset" in conditions)


def _ejected(upstream: Upstream, error: str) -> None:
    state = upstream.state
    log.warning(
        "backend ejected",
        extra={
            "backend": upstream.name,
            "seconds": round(state.ejected_until - time.monotonic(), 1),
            "ejections_in_a_row": state.ejections,
            "last_error": error,
        },
    )


def _forwarded_headers(request: Request) -> bytes:
    """The client's headers minus hop-by-hop ones, plus X-Forwarded-For, as bytes."""
    parts: list[bytes] = []
    forwarded_for = request.client.encode()
    connection: bytes | None = None
    for name, value in request.headers:
        if name in _REQUEST_DROP:
            if name == b"connection":
                connection = value
            continue
        if name == b"x-forwarded-for":
            forwarded_for = value + b", " + forwarded_for
            continue
        parts += (name, b": ", value, b"\r\n")
    parts += (b"x-forwarded-for: ", forwarded_for, b"\r\n")
    if connection is None or connection.lower() in (b"keep-alive", b"close"):
        return b"".join(parts)
    # headers the client named in Connection are hop-by-hop too: filter again
    listed = {token.strip().lower() for token in connection.split(b",")}
    kept = [parts[i : i + 4] for i in range(0, len(parts), 4) if parts[i] not in listed]
    return b"".join(b"".join(group) for group in kept)


def _signed(upstream: Upstream, request: Request, target: bytes, headers: bytes) -> bytes:
    """Headers for a signed backend: the client's own authorization (and any header the
    signer sets) replaced by the signer's."""
    assert upstream.signer is not None
    fields: dict[str, str] = {"host": upstream.pool.authority}
    for line in headers.split(b"\r\n"):
        if not line:
            continue
        raw_name, _, raw_value = line.partition(b": ")
        key, text = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        fields[key] = f"{fields[key]}, {text}" if key in fields else text
    if upstream.strip_authorization:
        fields.pop("authorization", None)
    fields["content-length"] = str(len(request.body))
    added = upstream.signer.sign(
        request.method.decode("latin-1"), upstream.url(target), fields, request.body
    )
    for field, text in added.items():
        fields[field.lower()] = text
    fields.pop("host", None)
    fields.pop("content-length", None)
    return "".join(f"{k}: {v}\r\n" for k, v in fields.items()).encode("latin-1")


def _answer(response: Answer, upstream: Upstream, attempts: int, method: bytes) -> Response:
    """The backend's answer for the client: hop-by-hop headers out, ours in (a HEAD
    answer keeps the backend's content-length: it has no body to count)."""
    drop = _drop_response_header
    headers = []
    for name, value in response.headers:
        verdict = drop.get(name)
        if verdict is None:
            verdict = name.lower() in _RESPONSE_DROP
            if len(drop) < 4096:
                drop[name] = verdict
        if not verdict:
            headers.append((name, value))
    if method == b"HEAD":
        headers += [(n, v) for n, v in response.headers if n.lower() == b"content-length"]
    headers.append((BACKEND_HEADER, upstream.header))
    if attempts > 1:
        headers.append((RETRIES_HEADER, str(attempts - 1).encode()))
    return Response(response.status, headers, response.body)


# header name as received -> dropped from answers (names arrive in the backend's casing)
_drop_response_header: dict[bytes, bool] = {}


def describe(upstreams: Iterable[Upstream], now: float) -> list[dict[str, Any]]:
    """Each backend's state, for the health route and ``deployer router show``."""
    return [
        {
            "name": u.name,
            "provider": u.config.provider,
            "tier": u.tier,
            "weight": u.weight,
            "url": u.config.url,
            "health_source": u.config.health_source,
            "inflight": u.inflight,
            "latency_ewma_ms": round(u.ewma * 1e3, 3),
            **u.state.describe(now),
        }
        for u in upstreams
    ]
