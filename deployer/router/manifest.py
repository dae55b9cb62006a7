"""router.yaml: the versioned schema (pydantic), loading, writing, and building it from
the backends a push left live.

Errors name the file, the line and the field, like deployer.yaml's. The module imports
only pydantic, PyYAML, ``deployer.errors`` and the provider SDK's registry (what a
provider declares: managed endpoints, default auth kind), so it runs in the router image
too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from deployer.errors import ConfigError, read_config_text

if TYPE_CHECKING:
    from deployer.providers import Backend

SCHEMA_VERSION = 1
DEFAULT_FILE = "router.yaml"
BUILTIN_AUTH = frozenset({"none", "bearer"})
PLUGIN_AUTH = frozenset({"sigv4", "google-oauth", "azure-key", "azure-token"})
AUTH_KINDS = BUILTIN_AUTH | PLUGIN_AUTH
RETRY_CONDITIONS = ("connect-failure", "reset", "timeout", "429", "5xx", "502", "503", "504")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
# Option names that would hold a secret: the manifest names where to find one instead.
_SECRET_NAMES = re.compile(r"^(token|key|secret|password|api_key|access_key|credentials?)$")

HEADER = """\
# router.yaml: the backends `deployer router serve` balances across (schema version 1).
# Written by `deployer push`; edit weights and tiers by hand or with `deployer router set`.
# Reference: deployer/router/README.md. No secrets here: auth options name env vars or files.
"""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Listen(_Strict):
    """Where the router accepts requests."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)


class BusyPoll(_Strict):
    """Poll without sleeping while requests flow (HAProxy's ``busy-polling``).

    Lower latency on virtual machines, where every sleep can cost a hypervisor wake-up,
    at the price of one core kept busy while traffic flows. For a router with a core of
    its own; it sleeps again after ``idle_ms`` without a request."""

    enabled: bool = Field(default=False, description="spin the event loop while busy")
    idle_ms: float = Field(
        default=50.0, gt=0, le=60000, description="stop spinning after this long without requests"
    )


class Retries(_Strict):
    """Retries go to another backend, bounded per request and by a router-wide budget."""

    attempts: int = Field(default=3, ge=1, le=10, description="tries per request, retries included")
    retry_on: tuple[str, ...] = Field(
        default=("connect-failure", "reset", "timeout", "429", "5xx"),
        description="what is retried: " + ", ".join(RETRY_CONDITIONS),
    )
    budget_percent: float = Field(
        default=20.0, ge=0, le=100, description="retries allowed as % of recent requests"
    )
    min_per_second: float = Field(
        default=5.0, ge=0, description="retries always allowed at this rate (low traffic)"
    )
    window_seconds: float = Field(default=10.0, gt=0, le=300, description="what 'recent' means")

    @field_validator("retry_on")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [v for v in value if v not in RETRY_CONDITIONS]
        if unknown:
            raise ValueError(
                f"unknown retry condition {unknown[0]!r}; expected " + ", ".join(RETRY_CONDITIONS)
            )
        return value


class Timeouts(_Strict):
    """Seconds. ``request`` bounds one attempt; ``total`` bounds a request with its retries."""

    connect: float = Field(default=2.0, gt=0, le=120)
    request: float = Field(default=30.0, gt=0, le=3600)
    total: float = Field(default=60.0, gt=0, le=3600)
    idle: float = Field(default=4.0, gt=0, le=3600, description="keep-alive to backends")

    @model_validator(mode="after")
    def _ordered(self) -> Timeouts:
        if self.total < self.request:
            raise ValueError("timeouts.total must be at least timeouts.request")
        return self


class ActiveHealth(_Strict):
    """GET a health path of each ``source: active`` backend."""

    interval: float = Field(default=2.0, gt=0, le=3600)
    timeout: float = Field(default=1.0, gt=0, le=120)
    healthy_threshold: int = Field(default=1, ge=1, le=100)
    unhealthy_threshold: int = Field(default=2, ge=1, le=100)


class PassiveHealth(_Strict):
    """Eject a backend after consecutive failures; re-admit it after a growing pause."""

    consecutive_failures: int = Field(default=3, ge=1, le=1000)
    base_ejection: float = Field(default=5.0, gt=0, le=3600, description="seconds, first time")
    max_ejection: float = Field(default=60.0, gt=0, le=86400, description="seconds, cap")


class ControlPlaneHealth(_Strict):
    """Poll the provider's endpoint status for ``source: control-plane`` backends."""

    interval: float = Field(default=30.0, gt=0, le=86400)
    timeout: float = Field(default=20.0, gt=0, le=600)


class Health(_Strict):
    active: ActiveHealth = ActiveHealth()
    passive: PassiveHealth = PassiveHealth()
    control_plane: ControlPlaneHealth = ControlPlaneHealth()


class Limits(_Strict):
    """What one client can make the router hold, and for how long (the defaults live here
    only). Over a limit the router answers itself and closes the connection: 414 for a
    long URL, 431 for headers too large or too many, 408 when the head or the body is
    not received in time, 413 for a body over ``body_mb``, 502 for a backend answer over
    ``response_mb`` (the router buffers answers), 503 beyond ``connections``."""

    url_bytes: int = Field(
        default=8192, ge=256, le=1024 * 1024, description="request line URL; longer: 414"
    )
    header_bytes: int = Field(
        default=64 * 1024, ge=1024, le=16 * 1024 * 1024, description="all headers; more: 431"
    )
    header_count: int = Field(default=100, ge=8, le=10000, description="headers; more: 431")
    header_timeout: float = Field(
        default=10.0, gt=0, le=3600, description="seconds to receive a whole request head: 408"
    )
    body_timeout: float = Field(
        default=60.0, gt=0, le=86400, description="seconds to receive a whole body: 408"
    )
    idle_timeout: float = Field(
        default=60.0, gt=0, le=86400, description="seconds a keep-alive client may sit idle"
    )
    body_mb: float = Field(default=64.0, gt=0, le=4096, description="request body; more: 413")
    response_mb: float = Field(default=64.0, gt=0, le=4096, description="backend answer; more: 502")
    connections: int = Field(
        default=4096, ge=1, le=1_000_000, description="open client connections; more: 503"
    )
    log_field_bytes: int = Field(
        default=1024, ge=64, le=1024 * 1024, description="access log fields (URL) cut here"
    )

    @property
    def body_bytes(self) -> int:
        return int(self.body_mb * 1024 * 1024)

    @property
    def response_bytes(self) -> int:
        return int(self.response_mb * 1024 * 1024)


class Admin(_Strict):
    """The router's own routes. ``/-/router/health`` and ``metrics_path`` describe the
    backends: by default they share the traffic port (as before); with ``port`` they move
    to a listener of their own on ``host`` (loopback unless said otherwise), and
    ``enabled: false`` turns them off. ``/-/router/live`` and ``/-/router/ready`` stay on
    the traffic port whatever this says (probes need them; they tell nothing)."""

    enabled: bool = Field(default=True, description="serve health and metrics at all")
    host: str = Field(default="127.0.0.1", description="the admin listener's address")
    port: int | None = Field(
        default=None, ge=0, le=65535, description="a port of their own (default: traffic port)"
    )


class AccessLog(_Strict):
    """One JSON line per request, buffered; ``path: '-'`` is stdout."""

    enabled: bool = True
    path: str = "-"


class Auth(BaseModel):
    """How the router signs requests to a backend. Options name where secrets are, never
    the secrets: ``token_env``/``token_file`` for bearer; provider plugins take their own."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str = "none"
    token_env: str | None = None
    token_file: str | None = None

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in AUTH_KINDS:
            raise ValueError(f"expected one of {', '.join(sorted(AUTH_KINDS))} (got {value!r})")
        return value

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _no_secrets(self) -> Auth:
        for name in self.options():
            if _SECRET_NAMES.match(name):
                raise ValueError(
                    f"auth.{name}: the manifest holds no secrets; name an environment "
                    f"variable ({name}_env) or a file ({name}_file) instead"
                )
        if self.kind == "bearer" and not (self.token_env or self.token_file):
            raise ValueError("bearer auth needs token_env or token_file")
        if self.kind in BUILTIN_AUTH and self.model_extra:
            unknown = ", ".join(sorted(self.model_extra))
            raise ValueError(f"auth {self.kind!r} takes no option {unknown} (check the spelling)")
        if self.kind == "none" and (self.token_env or self.token_file):
            raise ValueError("auth 'none' takes no token; use kind: bearer")
        return self

    def options(self) -> dict[str, Any]:
        """The provider-specific options (everything but ``kind``)."""
        return {**(self.model_extra or {}), **self.model_dump(exclude={"kind"}, exclude_none=True)}


class BackendHealth(_Strict):
    """How this backend's health is known: ``active`` checks GET ``path``;
    ``control-plane`` asks the provider; ``none`` relies on passive ejection alone."""

    source: Literal["active", "control-plane", "none"] = "active"
    path: str = "/ping"

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"expected an absolute path starting with '/' (got {value!r})")
        return value


class Synthetic(_Strict):
    """A prediction POSTed periodically through the real invoke path (signed): a health
    signal for managed endpoints, which have no public health route."""

    body: str
    content_type: str = "application/json"
    interval: float = Field(default=30.0, gt=0, le=86400)


class BackendConfig(_Strict):
    """One backend: where it is, how to sign for it, and its share of traffic."""

    name: str = Field(pattern=NAME_PATTERN)
    provider: str = Field(default="http", pattern=r"^[a-z][a-z0-9_-]*$")
    url: str
    region: str | None = None
    auth: Auth = Auth()
    weight: int = Field(default=1, ge=0, le=256, description="share within its tier; 0 drains")
    tier: int = Field(default=0, ge=0, le=9, description="0 serves first; 1 only when 0 is down")
    url_mode: Literal["base", "fixed"] | None = Field(
        default=None,
        description="base: the request path is appended; fixed: every request goes to url",
    )
    health: BackendHealth | None = None
    synthetic: Synthetic | None = None
    target: dict[str, Any] = Field(
        default_factory=dict, description="the provider's target options (control-plane health)"
    )
    pinned: bool = Field(default=False, description="kept by push even when no target lists it")
    timeout: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="seconds one attempt on this backend may take (default: timeouts.request;"
        " push fills in the platform's own limit, e.g. SageMaker's 60 s); it may exceed"
        " timeouts.total, which then stretches to it for this backend",
    )
    max_body_mb: float | None = Field(
        default=None,
        gt=0,
        le=4096,
        description="largest request body this backend takes (default: limits.body_mb; push"
        " fills in the platform's own limit, e.g. Vertex's 1.5 MB); a larger body goes to"
        " another backend, or is answered 413 naming the limit, never forwarded here",
    )

    @property
    def body_bytes(self) -> int | None:
        """``max_body_mb`` in bytes (None: only the router's ``limits.body_mb``)."""
        return None if self.max_body_mb is None else int(self.max_body_mb * 1024 * 1024)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^/\s?#]+(/[^\s#]*)?", value):
            raise ValueError(f"expected an http:// or https:// URL (got {value!r})")
        return value.rstrip("/") if value.count("/") == 3 else value

    @property
    def managed(self) -> bool:
        """A managed endpoint (one fixed invoke URL, no public health route), as the
        provider plugin declares (``managed``); False when it is not installed here."""
        return is_managed(self.provider)

    @property
    def mode(self) -> Literal["base", "fixed"]:
        """``fixed`` for managed endpoints (their invoke URL), ``base`` otherwise."""
        if self.url_mode is not None:
            return self.url_mode
        return "fixed" if self.managed else "base"

    @property
    def health_source(self) -> Literal["active", "control-plane", "none"]:
        if self.health is not None:
            return self.health.source
        return "control-plane" if self.managed else "active"

    @property
    def health_path(self) -> str:
        return self.health.path if self.health is not None else "/ping"

    @property
    def plain_http(self) -> bool:
        """Reachable by any HTTP proxy: no signing, the request path appended to the URL."""
        return self.auth.kind == "none" and self.mode == "base"


class Manifest(_Strict):
    """The whole of router.yaml."""

    version: Literal[1] = Field(default=1, description="schema version")
    name: str = Field(pattern=NAME_PATTERN, description="the project this router fronts")
    listen: Listen = Listen()
    policy: Literal["weighted", "least-latency"] = "weighted"
    retries: Retries = Retries()
    timeouts: Timeouts = Timeouts()
    health: Health = Health()
    access_log: AccessLog = AccessLog()
    metrics_path: str = "/metrics"
    limits: Limits = Limits()
    admin: Admin = Admin()
    busy_poll: BusyPoll = BusyPoll()
    backends: tuple[BackendConfig, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _legacy_body_limit(cls, value: Any) -> Any:
        """``max_body_mb`` (before ``limits``) is read as ``limits.body_mb``."""
        if not isinstance(value, dict) or "max_body_mb" not in value:
            return value
        data = dict(value)
        legacy = data.pop("max_body_mb")
        limits = data.get("limits")
        if limits is None:
            limits = {}
        if not isinstance(limits, dict):
            return value  # the limits field reports what it expected
        if "body_mb" in limits and limits["body_mb"] != legacy:
            raise ValueError(
                f"max_body_mb ({legacy!r}) and limits.body_mb ({limits['body_mb']!r}) disagree;"
                " keep limits.body_mb only"
            )
        data["limits"] = {**limits, "body_mb": legacy}
        return data

    @property
    def max_body_mb(self) -> float:
        """The request body limit (``limits.body_mb``; the former top-level field)."""
        return self.limits.body_mb

    @model_validator(mode="after")
    def _unique(self) -> Manifest:
        seen: set[str] = set()
        for backend in self.backends:
            if backend.name in seen:
                raise ValueError(f"backends: the name {backend.name!r} is used twice")
            seen.add(backend.name)
        return self

    @model_validator(mode="after")
    def _admin_port(self) -> Manifest:
        port = self.admin.port
        if port and port == self.listen.port:
            raise ValueError(
                f"admin.port: {port} is listen.port; give the admin routes another port, "
                "or leave admin.port out to keep them on the traffic port"
            )
        return self

    def backend(self, name: str) -> BackendConfig | None:
        return next((b for b in self.backends if b.name == name), None)

    def tiers(self) -> list[int]:
        return sorted({b.tier for b in self.backends})


# -- loading ---------------------------------------------------------------------------


def load(path: str | Path) -> Manifest:
    """Read and validate router.yaml; every problem is reported with its line and field."""
    file = Path(path)
    return parse(read_config_text(file, "create one with: deployer router init"), str(file))


def parse(text: str, source: str = DEFAULT_FILE) -> Manifest:
    """Validate YAML text; ``source`` names it in errors."""
    from deployer.yaml_errors import load_yaml, shown

    data, root = load_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError(source, ["expected a mapping with at least 'name' and 'backends'"])
    version = data.get("version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ConfigError(
            source,
            [
                f"version: expected {SCHEMA_VERSION}, the router.yaml version this deployer reads "
                f"(got {shown(version)})"
            ],
            hint="upgrade deployer, or rewrite the file with: deployer router init --force",
        )
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _problems(exc, root)) from None


def _problems(exc: ValidationError, root: yaml.Node | None, prefix: str = "") -> list[str]:
    """Each validation error as 'line N: field: message' (deployer.yaml's wording)."""
    errors = exc.errors()
    if prefix:
        errors = [{**e, "loc": (prefix, *e["loc"])} for e in errors]
    from deployer.yaml_errors import describe_errors

    return describe_errors(errors, root)


def to_dict(manifest: Manifest) -> dict[str, Any]:
    """The manifest as plain data: settings left at their defaults are left out, each
    backend's key fields are always written."""
    settings = manifest.model_dump(mode="json", exclude_defaults=True, exclude={"backends"})
    data: dict[str, Any] = {
        "version": SCHEMA_VERSION,
        "name": manifest.name,
        "policy": manifest.policy,
    }
    data.update({k: v for k, v in settings.items() if k not in data})
    backends = []
    for backend in manifest.backends:
        entry = backend.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
        auth = backend.auth.model_dump(mode="json", exclude_none=True)
        ordered: dict[str, Any] = {
            "name": backend.name,
            "provider": backend.provider,
            "url": backend.url,
            **({"region": backend.region} if backend.region else {}),
            "auth": auth if len(auth) > 1 else auth["kind"],
            "weight": backend.weight,
            "tier": backend.tier,
        }
        entry.pop("health", None)
        if backend.health is not None:  # what differs from the provider's default
            default = default_health(backend.provider)
            health = {
                k: v for k, v in backend.health.model_dump().items() if getattr(default, k) != v
            }
            if health:
                entry["health"] = health
        ordered.update({k: v for k, v in entry.items() if k not in ordered and v != {}})
        backends.append(ordered)
    data["backends"] = backends
    return data


def dump(manifest: Manifest) -> str:
    """router.yaml text, with its header comment."""
    return HEADER + yaml.safe_dump(to_dict(manifest), sort_keys=False, default_flow_style=False)


def write(manifest: Manifest, path: str | Path) -> Path:
    """Write atomically (a running router watching the file never reads half of it)."""
    file = Path(path)
    temporary = file.with_name(f".{file.name}.tmp")
    temporary.write_text(dump(manifest), encoding="utf-8")
    os.replace(temporary, file)
    return file


def replace_backends(manifest: Manifest, backends: Iterable[BackendConfig]) -> Manifest:
    """A copy of ``manifest`` with other backends, validated again."""
    data = manifest.model_dump()
    data["backends"] = [b.model_dump() for b in backends]
    return Manifest.model_validate(data)


def is_managed(provider: str) -> bool:
    """Whether ``provider``'s plugin declares its endpoints managed."""
    from deployer.providers.registry import declared

    return declared(provider).managed


def default_auth(provider: str) -> str:
    """The auth kind ``provider``'s plugin declares for its backends (``none`` if none)."""
    from deployer.providers.registry import declared

    return declared(provider).default_router_auth or "none"


def default_health(provider: str) -> BackendHealth:
    return BackendHealth(source="control-plane" if is_managed(provider) else "active")


def from_backends(
    name: str,
    backends: Iterable[Backend],
    existing: Manifest | None = None,
    *,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    limits: Mapping[str, Mapping[str, float]] | None = None,
) -> Manifest:
    """The manifest for what a push left live.

    ``backends`` are the live targets' ``provider.route()`` answers; ``options`` maps a
    target name to its deployer.yaml options (kept for control-plane health); ``limits``
    maps a target name to the ``timeout`` and ``max_body_mb`` its provider declares
    (used where the backend has none set by hand). Backends
    that remain keep their hand-edited weight, tier, health, synthetic check and auth
    options; ones no longer live are dropped unless ``pinned``; new ones get weight 1,
    tier 0 and the health source their provider allows. Router settings are kept.
    """
    options = options or {}
    limits = limits or {}
    previous = {b.name: b for b in existing.backends} if existing else {}
    fresh: dict[str, BackendConfig] = {}
    for live in backends:
        old = previous.get(live.name)
        auth_kind = live.auth or default_auth(live.provider)
        data: dict[str, Any] = {
            "name": live.name,
            "provider": live.provider,
            "url": live.url,
            "region": live.region,
            "auth": {"kind": auth_kind},
            "target": dict(options.get(live.name, {})),
            **limits.get(live.name, {}),
        }
        if old is not None:
            kept = old.model_dump(exclude={"name", "provider", "url", "region", "auth", "target"})
            data.update({k: v for k, v in kept.items() if v is not None or k not in data})
            if old.auth.kind == auth_kind:
                data["auth"] = old.auth.model_dump(exclude_none=True)
            if not data["target"]:
                data["target"] = dict(old.target)
        fresh[live.name] = BackendConfig.model_validate(data)
    result: list[BackendConfig] = []
    for old in existing.backends if existing else ():
        if old.name in fresh:
            result.append(fresh.pop(old.name))  # still live: keeps its place in the file
        elif old.pinned:
            result.append(old)
    result.extend(fresh.values())
    if existing is None:
        return Manifest.model_validate({"name": name, "backends": [b.model_dump() for b in result]})
    data = existing.model_dump()
    data["name"] = name
    data["backends"] = [b.model_dump() for b in result]
    return Manifest.model_validate(data)


# -- editing (the API behind `deployer router add/remove/set`) ---------------------------


def new(
    name: str, *, policy: str = "weighted", host: str = "127.0.0.1", port: int = 8080
) -> Manifest:
    """An empty manifest (backends come from ``push`` or ``add``)."""
    return Manifest.model_validate(
        {"name": name, "policy": policy, "listen": {"host": host, "port": port}}
    )


def with_backend(
    manifest: Manifest,
    backend: Mapping[str, Any],
    *,
    replace: bool = False,
    source: str = DEFAULT_FILE,
) -> Manifest:
    """Add a backend (validated); ``replace`` swaps an existing one of the same name."""
    try:
        config = BackendConfig.model_validate(dict(backend))
    except ValidationError as exc:
        raise ConfigError(source, _problems(exc, None, prefix="backends.new")) from None
    if manifest.backend(config.name) is not None and not replace:
        raise ConfigError(
            source,
            [f"backends: {config.name!r} already exists"],
            hint="remove it first, or change it with: deployer router set",
        )
    kept = [b for b in manifest.backends if b.name != config.name]
    position = next((i for i, b in enumerate(manifest.backends) if b.name == config.name), None)
    kept.insert(len(kept) if position is None else position, config)
    return replace_backends(manifest, kept)


def without_backend(manifest: Manifest, name: str, *, source: str = DEFAULT_FILE) -> Manifest:
    if manifest.backend(name) is None:
        raise ConfigError(source, [f"backends: no backend named {name!r}"])
    return replace_backends(manifest, [b for b in manifest.backends if b.name != name])


def with_settings(
    manifest: Manifest,
    name: str | None = None,
    *,
    weight: int | None = None,
    tier: int | None = None,
    policy: str | None = None,
    source: str = DEFAULT_FILE,
) -> Manifest:
    """Change one backend's weight or tier, or the policy."""
    data = manifest.model_dump()
    if policy is not None:
        data["policy"] = policy
    if name is not None:
        if manifest.backend(name) is None:
            raise ConfigError(source, [f"backends: no backend named {name!r}"])
        for entry in data["backends"]:
            if entry["name"] == name:
                if weight is not None:
                    entry["weight"] = weight
                if tier is not None:
                    entry["tier"] = tier
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _problems(exc, None)) from None


def lint(manifest: Manifest) -> list[str]:
    """Things that are valid but probably not meant."""
    warnings = []
    if not manifest.backends:
        warnings.append("no backends yet: `deployer push` or `deployer router add` adds them")
    for tier in manifest.tiers():
        members = [b for b in manifest.backends if b.tier == tier]
        if all(b.weight == 0 for b in members):
            warnings.append(f"tier {tier}: every backend has weight 0, so the tier never serves")
    for backend in manifest.backends:
        if backend.health_source == "control-plane" and not backend.target:
            warnings.append(
                f"{backend.name}: control-plane health needs the target's options "
                "(`target:`); without them only passive ejection applies"
            )
        if backend.managed and backend.health_source == "active":
            warnings.append(
                f"{backend.name}: a managed endpoint has no public health route; use "
                "health.source control-plane and/or a synthetic check"
            )
    urls = [b.url for b in manifest.backends]
    for url in sorted({u for u in urls if urls.count(u) > 1}):
        warnings.append(f"{url} is listed more than once")
    return warnings
