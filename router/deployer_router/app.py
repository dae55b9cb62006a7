"""The built-in router's life: start, reload, stop (and ``serve``/``run`` for a process).

``Router`` owns the HTTP server, the current ``Snapshot`` and one set of background tasks
per backend: credential refresh (credentials.py) and the health checks (probes.py, run
by health.py). Its own routes are admin.py's; its event logs, logs.py's. A reload
(SIGHUP, the manifest file changing, or ``Router.reload``) validates the new manifest,
builds the new backends (keeping pools, health and counters of backends whose identity
did not change), runs one round of checks on the new ones, then swaps the snapshot in
one assignment. Requests in flight finish on the snapshot they started with; pools of
removed backends close when their last request ends. A manifest that fails to load
leaves the router as it was, and says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deployer.errors import DeployerError
from deployer.router import auth
from deployer.router.manifest import Manifest, load
from deployer_router import health
from deployer_router.accesslog import AccessLog, open_log
from deployer_router.admin import AdminHandler, admin_response
from deployer_router.busypoll import BusyPoller
from deployer_router.client import stop_timeouts
from deployer_router.credentials import refresh_loop, refresh_once
from deployer_router.logs import configure_logging, quiet_credential_loggers
from deployer_router.metrics import RouterStats
from deployer_router.probes import Check, checks_for
from deployer_router.proxy import Proxy, Snapshot, Upstream, identity
from deployer_router.redact import backend_label
from deployer_router.retry import RetryBudget
from deployer_router.scrape import Collector
from deployer_router.server import HttpServer, Request, Response, ensure_fd_budget, fd_budget
from deployer_router.tasks import stop_tasks

log = logging.getLogger("deployer.router")
WATCH_SECONDS = 1.0
ADMIN_BODY = 64 * 1024  # the admin routes take no body


class Router:
    """The built-in router for one manifest (reloadable)."""

    def __init__(
        self,
        manifest: Manifest,
        source: Path | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        access_log: bool | None = None,
        busy_poll: bool | None = None,
    ) -> None:
        self.source = source
        self._busy_poll_override = busy_poll
        self.poller: BusyPoller | None = None
        self.host = host or manifest.listen.host
        self.port = manifest.listen.port if port is None else port
        self.stats = RouterStats()
        enabled = manifest.access_log.enabled if access_log is None else access_log
        self.access_log: AccessLog | None = open_log(
            enabled, manifest.access_log.path, manifest.limits.log_field_bytes
        )
        self._tasks: dict[tuple[Any, ...], list[asyncio.Task[None]]] = {}
        self._background: list[asyncio.Task[None]] = []
        self._reload_lock = asyncio.Lock()
        self._stamp = _stamp(source)
        self._initial = manifest
        self.snapshot: Snapshot | None = None
        self.proxy: Proxy | None = None
        self.server: HttpServer | None = None
        self.admin_server: HttpServer | None = None  # admin.port: health and metrics
        self.admin_port: int | None = None
        self.collector = Collector(
            self.stats, lambda: self.snapshot.upstreams if self.snapshot else []
        )
        self.stopped = asyncio.Event()

    # -- start and stop ----------------------------------------------------------------

    async def start(self, sock: Any = None) -> int:
        """Build the backends, check them once, listen. Returns the port."""
        quiet_credential_loggers()
        snapshot = await self._build(self._initial, None)
        self.snapshot = snapshot
        self.proxy = Proxy(snapshot, self.stats, self.access_log, self._internal)
        manifest = self._initial
        fd_limit = ensure_fd_budget(manifest.limits.connections)
        if 0 <= fd_limit < fd_budget(manifest.limits.connections):
            log.warning(
                "the open files limit is below what limits.connections needs: past it, "
                "new connections wait in the backlog instead of getting 503",
                extra={"open_files_limit": fd_limit, "connections": manifest.limits.connections},
            )
        self.server = HttpServer(self.proxy, limits=manifest.limits)
        self.server.log_error = lambda: log.exception("request handler failed")
        self.poller = BusyPoller(self.server, manifest.busy_poll.idle_ms / 1000)
        self._configure_polling(manifest)
        self.server.on_request = self.poller.wake
        self.port = await self.server.start(self.host, self.port, sock)
        admin = manifest.admin
        if admin.enabled and admin.port is not None:
            self.admin_server = HttpServer(
                AdminHandler(self._admin_answer), limits=manifest.limits, max_body=ADMIN_BODY
            )
            self.admin_server.log_error = lambda: log.exception("admin route failed")
            self.admin_port = await self.admin_server.start(admin.host, admin.port)
        if self.access_log is not None:
            self.access_log.start()
        if self.source is not None:
            self._background.append(asyncio.get_running_loop().create_task(self._watch()))
        log.info(
            "router listening",
            extra={
                "address": f"{self.host}:{self.port}",
                "backends": len(snapshot.upstreams),
                "policy": manifest.policy,
                "admin": self._admin_where(),
                "max_connections": manifest.limits.connections,
                "open_files_limit": fd_limit,
            },
        )
        return self.port

    def _admin_where(self) -> str:
        admin = self._initial.admin
        if not admin.enabled:
            return "disabled"
        if self.admin_server is None:
            return "traffic port"
        return f"{admin.host}:{self.admin_port}"

    async def stop(self, grace: float = 20.0) -> None:
        """Stop accepting, finish requests in flight (up to ``grace`` s), then cancel every
        task the router started and wait for them: none is left pending."""
        if self.poller is not None:
            self.poller.enabled = False
        if self.admin_server is not None:
            await self.admin_server.shutdown(0.0)
        if self.server is not None:
            await self.server.shutdown(grace)
        tasks = [task for tasks in self._tasks.values() for task in tasks]
        tasks += self._background
        if self.proxy is not None:
            tasks += self.proxy.tasks()
        if self.snapshot is not None:
            for upstream in self.snapshot.upstreams:
                upstream.pool.close()
                tasks += upstream.pool.cancel_connects()
        sweeper = stop_timeouts()
        if sweeper is not None:
            tasks.append(sweeper)
        await stop_tasks(tasks)
        self._tasks.clear()
        self._background.clear()
        if self.access_log is not None:
            await self.access_log.stop()
        self.stopped.set()

    # -- reload ------------------------------------------------------------------------

    async def reload(self, manifest: Manifest | None = None) -> bool:
        """Swap in a new manifest (default: read the source file again)."""
        async with self._reload_lock:
            try:
                if manifest is None:
                    if self.source is None:
                        raise DeployerError("this router has no manifest file to reload")
                    self._stamp = _stamp(self.source)
                    # parsing a large file takes seconds: never on the loop serving traffic
                    manifest = await asyncio.to_thread(load, self.source)
                old = self.snapshot
                snapshot = await self._build(manifest, old)
            except DeployerError as exc:
                self.stats.reloads["failed"] += 1
                log.error(
                    "reload failed; keeping the running manifest",
                    extra={"error": exc.message, "hint": exc.hint},
                )
                return False
            except Exception as exc:  # a bug or a plugin failing: keep serving regardless
                self.stats.reloads["failed"] += 1
                log.exception(
                    "reload failed; keeping the running manifest",
                    extra={"error": f"{type(exc).__name__}: {exc}"},
                )
                return False
            assert self.proxy is not None
            self.snapshot = snapshot
            self.proxy.snapshot = snapshot
            kept = {u.key for u in snapshot.upstreams}
            retired: list[asyncio.Task[None]] = []
            for upstream in old.upstreams if old else ():
                if upstream.key not in kept:
                    retired += self._tasks.pop(upstream.key, [])
                    upstream.pool.close()
            await stop_tasks(retired)
            self.stats.reloads["ok"] += 1
            self._configure_polling(manifest)
            if (manifest.listen.host, manifest.listen.port) != (
                self._initial.listen.host,
                self._initial.listen.port,
            ):
                log.warning("listen changed in the manifest; restart the router to apply it")
            if manifest.admin != self._initial.admin:
                log.warning("admin changed in the manifest; restart the router to apply it")
            self._apply_limits(manifest)
            log.info("manifest reloaded", extra={"backends": [u.name for u in snapshot.upstreams]})
            return True

    def _apply_limits(self, manifest: Manifest) -> None:
        """Reloaded limits: new requests and connections get them."""
        limits = manifest.limits
        if self.server is not None:
            if limits.connections > self.server.max_connections:
                ensure_fd_budget(limits.connections)
            self.server.apply(limits)
        if self.admin_server is not None:
            self.admin_server.apply(limits, ADMIN_BODY)
        if self.access_log is not None:
            self.access_log.field_bytes = limits.log_field_bytes

    def _polling(self) -> dict[str, Any]:
        poller = self.poller
        if poller is None:
            return {"enabled": False, "spinning": False, "spins": 0}
        return {"enabled": poller.enabled, "spinning": poller.running, "spins": poller.spins}

    def _configure_polling(self, manifest: Manifest) -> None:
        """Busy polling follows the manifest (and reloads) unless the command line set it."""
        if self.poller is None:
            return
        enabled = manifest.busy_poll.enabled
        if self._busy_poll_override is not None:
            enabled = self._busy_poll_override
        self.poller.enabled = enabled
        self.poller.idle_seconds = manifest.busy_poll.idle_ms / 1000

    async def _watch(self) -> None:
        assert self.source is not None
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            stamp = _stamp(self.source)
            if stamp is not None and stamp != self._stamp:
                self._stamp = stamp
                await self.reload()

    # -- building backends -------------------------------------------------------------

    async def _build(self, manifest: Manifest, old: Snapshot | None) -> Snapshot:
        previous = {u.key: u for u in old.upstreams} if old else {}
        upstreams: list[Upstream] = []
        fresh: list[Upstream] = []
        for config in manifest.backends:
            existing = previous.get(identity(config))
            if existing is not None:
                existing.update(config, manifest)
                upstreams.append(existing)
                continue
            signer = auth.signer_for(config) if config.auth.kind != "none" else None
            upstream = Upstream(config, manifest, signer)
            upstreams.append(upstream)
            fresh.append(upstream)
        await asyncio.gather(*(self._first_checks(u, manifest) for u in fresh))
        for upstream in fresh:
            self._tasks[upstream.key] = self._start_tasks(upstream, manifest)
        settings = manifest.retries
        budget = (
            old.budget
            if old and _same_budget(old.manifest, manifest)
            else RetryBudget(
                settings.budget_percent, settings.min_per_second, settings.window_seconds
            )
        )
        return Snapshot(manifest, upstreams, budget)

    async def _first_checks(self, upstream: Upstream, manifest: Manifest) -> None:
        """Credentials and one round of checks before the backend takes traffic."""
        if upstream.signer is not None:
            await refresh_once(upstream, self._settings().health.control_plane.timeout)
        for check in self._checks(upstream, manifest):
            with contextlib.suppress(Exception):
                ok, reason = await asyncio.wait_for(
                    check.probe(), manifest.health.active.timeout + 1
                )
                if ok is not None:
                    upstream.state.set_check(check.name, ok, reason, check.threshold())

    def _start_tasks(self, upstream: Upstream, manifest: Manifest) -> list[asyncio.Task[None]]:
        loop = asyncio.get_running_loop()
        tasks = []
        if upstream.signer is not None:
            tasks.append(loop.create_task(refresh_loop(upstream, self._refresh_timeout)))
        for check in self._checks(upstream, manifest):
            tasks.append(
                loop.create_task(
                    health.run_check(
                        check.name,
                        upstream.state,
                        check.probe,
                        check.interval,
                        check.threshold,
                        label=backend_label(upstream.name, upstream.config.url),
                    )
                )
            )
        return tasks

    def _settings(self) -> Manifest:
        return self.snapshot.manifest if self.snapshot is not None else self._initial

    def _refresh_timeout(self) -> float:
        return self._settings().health.control_plane.timeout

    def _checks(self, upstream: Upstream, manifest: Manifest) -> list[Check]:
        return checks_for(upstream, manifest, self._settings)

    async def _internal(self, request: Request, snap: Snapshot) -> Response | None:
        """The router's routes on the traffic port (health and metrics unless admin
        moves them to their own port or turns them off)."""
        admin = self._initial.admin
        describes = admin.enabled and admin.port is None
        return admin_response(
            request, snap, self.collector, self._ready, self._polling, describes=describes
        )

    def _admin_answer(self, request: Request) -> Response | None:
        assert self.snapshot is not None
        return admin_response(request, self.snapshot, self.collector, self._ready, self._polling)

    def _ready(self) -> bool:
        return self.server is not None and not self.server.draining


def _same_budget(a: Manifest, b: Manifest) -> bool:
    return a.retries.model_dump() == b.retries.model_dump()


def _stamp(path: Path | None) -> tuple[float, int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime, st.st_size, st.st_ino)


async def serve(
    source: Path,
    *,
    host: str | None = None,
    port: int | None = None,
    access_log: bool | None = None,
    busy_poll: bool | None = None,
    grace: float = 20.0,
    ready: Callable[[int], None] | None = None,
) -> None:
    """Run the router for the manifest at ``source`` until SIGTERM or SIGINT."""
    router = Router(
        load(source), source, host=host, port=port, access_log=access_log, busy_poll=busy_poll
    )
    bound = await router.start()
    # What exists now (modules, manifest, pools) lives as long as the process: keep it out
    # of the collector's full passes, which otherwise pause the loop under load.
    gc.collect()
    gc.freeze()
    if ready is not None:
        ready(bound)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    reloads: set[asyncio.Task[bool]] = set()

    def reload() -> None:
        task = loop.create_task(router.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload)
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    await stopping.wait()
    log.info("stopping: finishing requests in flight", extra={"grace_seconds": grace})
    if reloads:  # let a reload in progress finish (within the grace), then stop
        await asyncio.wait(set(reloads), timeout=grace)
        await stop_tasks(reloads)
    await router.stop(grace)


def run(source: Path, **options: Any) -> None:
    """Blocking entry point: uvloop when installed, JSON event logs on stderr."""
    configure_logging()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a router requirement
        asyncio.run(serve(source, **options))
    else:
        uvloop.run(serve(source, **options))
