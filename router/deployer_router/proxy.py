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

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from time import monotonic
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from deployer_router.client import Pool, UpstreamError
from deployer_router.client import Response as Answer
from deployer_router.health import HealthState
from deployer_router.metrics import BackendStats, RouterStats
from deployer_router.policy import FAILURE_PENALTY, Balancer, observe_latency
from deployer_router.redact import backend_label, redact_url
from deployer_router.retry import RetryBudget, status_retryable
from deployer_router.server import Request, Respond, Response

if TYPE_CHECKING:
    from deployer.router.auth import Signer
    from deployer.router.manifest import BackendConfig, Manifest
    from deployer_router.accesslog import AccessLog

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
        "rejected",
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
        self.pool = Pool(
            config.url,
            connect_timeout=timeouts.connect,
            idle_timeout=timeouts.idle,
            max_answer=manifest.limits.response_bytes,
        )
        self.signer = None if config.auth.kind == "none" else signer
        # set when the backend answers 401/403 to signed requests: refresh credentials now
        self.rejected = asyncio.Event()
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
        self.pool.max_answer = manifest.limits.response_bytes

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
    """The request handler: internal routes, else an ``Exchange`` that forwards with
    retries (``deployer_router.server.Handler``)."""

    def __init__(
        self, snapshot: Snapshot, stats: RouterStats, access_log: AccessLog | None, internal: Any
    ) -> None:
        self.snapshot = snapshot
        self.stats = stats
        self.access_log = access_log
        self.internal = internal  # async (Request, Snapshot) -> Response | None
        self._tasks: set[asyncio.Task[None]] = set()  # internal routes in progress

    def start(self, request: Request, respond: Respond) -> None:
        snap = self.snapshot
        target = request.target
        if target[:3] == b"/-/" or target.startswith(snap.metrics_path):
            task = asyncio.get_running_loop().create_task(self._internal(request, snap, respond))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        Exchange(self, snap, request, respond).begin()

    def tasks(self) -> list[asyncio.Task[None]]:
        """Internal routes still being answered (the router awaits them when it stops)."""
        return list(self._tasks)

    async def __call__(self, request: Request) -> Response:
        """One request as a coroutine (for embedders and tests)."""
        answer: asyncio.Future[Response] = asyncio.get_running_loop().create_future()

        def respond(_: Request, response: Response) -> None:
            if not answer.done():
                answer.set_result(response)

        self.start(request, respond)
        return await answer

    async def _internal(self, request: Request, snap: Snapshot, respond: Respond) -> None:
        try:
            answer: Response | None = await self.internal(request, snap)
        except Exception:
            log.exception("internal route failed")
            answer = Response(500, _JSON, b'{"error":"internal router error"}')
        if answer is None:  # not one of ours: a path like any other
            Exchange(self, snap, request, respond).begin()
        else:
            respond(request, answer)


class Exchange:
    """One client request on its way through the router: attempts on backends chosen by
    the policy, retries within the budget, then one answer. Driven by callbacks (no task
    per request); every request keeps the snapshot it started with."""

    __slots__ = (
        "attempt_started",
        "failures",
        "headers",
        "last",
        "proxy",
        "refused",
        "request",
        "respond",
        "snap",
        "started",
        "tried",
    )

    def __init__(self, proxy: Proxy, snap: Snapshot, request: Request, respond: Respond) -> None:
        self.proxy = proxy
        self.snap = snap
        self.request = request
        self.respond = respond
        self.tried: list[Upstream] = []
        self.failures: list[dict[str, str]] = []
        self.last: Answer | None = None  # the last retryable answer of a backend
        self.headers = b""
        self.started = self.attempt_started = 0.0
        self.refused: list[Upstream] = []  # backends whose max_body_mb the body passes

    def begin(self) -> None:
        snap = self.snap
        self.started = now = monotonic()
        snap.budget.record_request(now)
        self.refused = too_small_for(snap.upstreams, len(self.request.body))
        upstream = snap.balancer.pick(now, self.refused)
        if upstream is None and len(self.refused) == len(snap.upstreams):
            reason = "the body is over every backend's max_body_mb"
            self._finish(_too_large(self.refused, len(self.request.body)), reason, now)
            return
        if upstream is None:
            self.proxy.stats.no_backend += 1
            reason = "every backend is unavailable"
            self._finish(_unavailable(snap, [], [], reason, now), reason, now)
            return
        self.headers = _forwarded_headers(self.request)
        self._try(upstream, now)

    def _try(self, upstream: Upstream, now: float) -> None:
        snap = self.snap
        self.tried.append(upstream)
        self.attempt_started = now
        request_timeout = upstream.config.timeout or snap.timeout_request
        total = max(snap.timeout_total, request_timeout)  # a backend's own timeout stretches it
        timeout = min(request_timeout, total - (now - self.started))
        error = send_attempt(upstream, self.request, self.headers, timeout, self._answered)
        if error is not None:
            self._decide(error, now)

    def _answered(self, outcome: Answer | UpstreamError) -> None:
        """The pool's callback for the attempt in flight."""
        now = monotonic()
        try:
            record_outcome(self.tried[-1], outcome, self.attempt_started, now)
            self._decide(outcome, now)
        except Exception:  # a bug must not leave the client waiting
            log.exception("request handling failed")
            self._finish(Response(500, _JSON, b'{"error":"internal router error"}'), "bug", now)

    def _decide(self, outcome: Answer | UpstreamError, now: float) -> None:
        """Answer, or try another backend, or give up."""
        snap = self.snap
        upstream = self.tried[-1]
        if not isinstance(outcome, UpstreamError):
            status = outcome.status
            if status < 429 or not status_retryable(status, snap.retry_on):
                self._finish(_answer(outcome, upstream, len(self.tried), self.request.method))
                return
            self.last = outcome
            self.failures.append({"backend": upstream.name, "error": f"HTTP {status}"})
        else:
            self.last = None
            self.failures.append({"backend": upstream.name, "error": f"{outcome.kind}: {outcome}"})
            if outcome.kind == "oversized":  # another backend would answer as much
                self._finish(_oversized(upstream, str(outcome)), f"oversized: {outcome}", now)
                return
            if not _error_retryable(outcome, snap.retry_on):
                self._give_up(f"{outcome.kind} is not retried", now)
                return
        if len(self.tried) >= snap.attempts:
            self._give_up(f"all {snap.attempts} attempts failed", now)
            return
        if now - self.started >= snap.timeout_total:
            self._give_up(f"the total timeout ({snap.timeout_total:g}s) is reached", now)
            return
        following = snap.balancer.pick(now, [*self.tried, *self.refused])
        if following is None:
            self._give_up("no other backend is available to retry on", now)
            return
        if not snap.budget.try_retry(now):
            self.proxy.stats.budget_exhausted += 1
            self._give_up("retry budget exhausted", now)
            return
        self.proxy.stats.retries += 1
        self._try(following, now)

    def _give_up(self, reason: str, now: float) -> None:
        last = self.last
        if last is not None:  # the backend's own answer says more than ours would
            self._finish(_answer(last, self.tried[-1], len(self.tried), self.request.method))
        else:
            self._finish(_unavailable(self.snap, self.tried, self.failures, reason, now), reason)

    def _finish(self, response: Response, error: str | None = None, now: float = 0.0) -> None:
        """Count, log, answer. ``error``: why the router answered itself (None when a
        backend's answer is returned)."""
        end = now or monotonic()
        seconds = end - self.started
        proxy = self.proxy
        proxy.stats.finished(response.status, seconds)
        if proxy.access_log is not None:
            request = self.request
            tried = self.tried
            proxy.access_log.write(
                (
                    time.time(),
                    request.method,
                    request.target,
                    response.status,
                    tried[-1].name if tried and error is None else None,
                    len(tried),
                    seconds * 1e3,
                    len(request.body),
                    len(response.body),
                    request.client,
                    error,
                )
            )
        self.respond(self.request, response)


def send_attempt(
    upstream: Upstream,
    request: Request,
    headers: bytes,
    timeout: float,
    done: Callable[[Answer | UpstreamError], None],
) -> UpstreamError | None:
    """Start one try on one backend: sign, send; ``done`` gets the outcome (pass it to
    ``record_outcome``). Returns the error instead when nothing could be sent."""
    target = upstream.target(request.target)
    if upstream.signer is not None:
        try:
            headers = _signed(upstream, request, target, headers)
        except Exception as exc:  # a signer bug or missing credentials: this backend fails
            return UpstreamError("connect-failure", f"signing failed: {type(exc).__name__}")
    upstream.inflight += 1
    upstream.stats.requests += 1
    upstream.pool.send(request.method, target, headers, request.body, timeout, done)
    return None


def record_outcome(
    upstream: Upstream, outcome: Answer | UpstreamError, started: float, now: float
) -> None:
    """Fold one attempt's outcome into the backend's health, latency and counters."""
    upstream.inflight -= 1
    stats = upstream.stats
    if isinstance(outcome, UpstreamError):
        stats.error(outcome.kind)
        if outcome.kind == "oversized":  # the backend works; the answer is over our limit
            observe_latency(upstream, now - started, now)
            return
        if upstream.state.record_failure(now):
            _ejected(upstream, f"{outcome.kind}: {outcome}")
        observe_latency(upstream, FAILURE_PENALTY, now)
        return
    elapsed = now - started
    status = outcome.status
    stats.answered(status, elapsed)
    if status >= 500:
        stats.error("5xx")
        if upstream.state.record_failure(now):
            _ejected(upstream, f"HTTP {status}")
        observe_latency(upstream, max(elapsed, FAILURE_PENALTY), now)
    else:
        if status == 429:
            stats.error("429")
        elif (status == 401 or status == 403) and upstream.signer is not None:
            upstream.rejected.set()
        state = upstream.state
        if state.consecutive_failures or state.ejections:
            state.record_success()
        observe_latency(upstream, elapsed, now)


async def attempt(
    upstream: Upstream, request: Request, headers: bytes, timeout: float, started: float
) -> Answer | UpstreamError:
    """One try on one backend as a coroutine, recorded like a client request's (the
    synthetic health check uses it)."""
    answer: asyncio.Future[Answer | UpstreamError] = asyncio.get_running_loop().create_future()

    def done(outcome: Answer | UpstreamError) -> None:
        record_outcome(upstream, outcome, started, monotonic())
        if not answer.done():
            answer.set_result(outcome)

    error = send_attempt(upstream, request, headers, timeout, done)
    return error if error is not None else await answer


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


def too_small_for(upstreams: Iterable[Upstream], size: int) -> list[Upstream]:
    """The backends whose ``max_body_mb`` a body of ``size`` bytes is over."""
    return [u for u in upstreams if u.config.body_bytes is not None and size > u.config.body_bytes]


def _too_large(refused: list[Upstream], size: int) -> Response:
    """413 from the router, before forwarding: the body is over each backend's limit."""
    limits = {u.name: f"{u.config.max_body_mb:g} MB ({u.config.body_bytes} bytes)" for u in refused}
    named = ", ".join(f"{name}: {limit}" for name, limit in limits.items())
    body = {
        "error": f"request body of {size} bytes is over the backends' limits ({named})",
        "limits": limits,
    }
    return Response(413, _JSON, orjson.dumps(body))


def _oversized(upstream: Upstream, detail: str) -> Response:
    """502 from the router: the backend's answer passed ``limits.response_mb``."""
    body = {
        "error": "the backend's answer is too large for the router",
        "backend": upstream.name,
        "detail": detail,
    }
    return Response(502, _JSON, orjson.dumps(body))


def _error_retryable(error: UpstreamError, conditions: frozenset[str]) -> bool:
    kind = error.kind
    return kind in conditions or (kind == "protocol" and "reset" in conditions)


def _ejected(upstream: Upstream, error: str) -> None:
    state = upstream.state
    log.warning(
        "backend ejected",
        extra={
            **backend_label(upstream.name, upstream.config.url),
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
            "url": redact_url(u.config.url),
            "health_source": u.config.health_source,
            "inflight": u.inflight,
            "latency_ewma_ms": round(u.ewma * 1e3, 3),
            **u.state.describe(now),
        }
        for u in upstreams
    ]
