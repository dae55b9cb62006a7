"""A router on its own event loop in a background thread, for programs that embed it
beside other work (release scripts, notebooks) and for tests::

    with BackgroundRouter(load("router.yaml")) as router:
        httpx.post(router.url + "/invocations", json=...)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from deployer_router.tasks import stop_tasks

if TYPE_CHECKING:
    from deployer.router.manifest import Manifest
    from deployer_router.app import Router

T = TypeVar("T")
log = logging.getLogger("deployer.router")
EXECUTOR_SECONDS = 10.0  # how long closing waits for worker threads (credential refresh)


class BackgroundRouter:
    """Starts on ``__enter__`` (raising what start raised), stops on ``__exit__``."""

    def __init__(
        self,
        manifest: Manifest,
        source: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 60.0,
    ) -> None:
        self.manifest = manifest
        self.source = source  # watched and reloaded when given
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.router: Router | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> BackgroundRouter:
        self._thread = threading.Thread(target=self._run, name="deployer-router", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.startup_timeout):
            self.__exit__()  # stops the loop: start() fails, and the thread cleans up
            raise TimeoutError(f"the router did not start within {self.startup_timeout:g}s")
        if self._error is not None:
            self._thread.join(30)  # the loop is closed when this returns
            raise self._error
        return self

    def _run(self) -> None:
        from deployer_router.app import Router

        loop = _new_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            try:
                self.router = Router(self.manifest, self.source, host=self.host, port=self.port)
                self.port = loop.run_until_complete(self.router.start())
            except BaseException as exc:  # handed to __enter__'s caller
                self._error = exc
                if self.router is not None:  # it may have started tasks before failing
                    with contextlib.suppress(Exception):
                        loop.run_until_complete(self.router.stop(0.0))
                self._ready.set()
                return
            self._ready.set()
            loop.run_forever()
            loop.run_until_complete(self.router.stop(1.0))
        finally:
            _close(loop)
            asyncio.set_event_loop(None)

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run ``coroutine`` on the router's loop (``router.reload()``, say); its result."""
        assert self._loop is not None, "the router is not running"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: stopped already
                self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(30)


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Close ``loop`` cleanly: stop whatever tasks remain, finish async
    generators and the default executor's threads, then close it."""
    try:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        if pending:
            log.warning(
                "cancelling tasks left running when the router stopped",
                extra={"tasks": [repr(task) for task in pending]},
            )
            loop.run_until_complete(stop_tasks(pending))
        loop.run_until_complete(loop.shutdown_asyncgens())
        with contextlib.suppress(asyncio.TimeoutError):
            loop.run_until_complete(
                asyncio.wait_for(loop.shutdown_default_executor(), EXECUTOR_SECONDS)
            )
    finally:
        loop.close()


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a router requirement
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
