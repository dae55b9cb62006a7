"""The built-in router (deployer.router.app.Router) in this process, on its own event
loop in a thread, with the azureml plugin registered the way the router looks plugins up,
and the manifest ``deployer push`` would write for a provider's live endpoint."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from deployer.router import manifest as router_manifest
from deployer.router import plugins


def register_azure_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    from deployer_azure.provider import AzureMLProvider

    providers = {"azureml": AzureMLProvider}
    monkeypatch.setattr(plugins, "provider_class", providers.__getitem__)


def pushed_manifest(
    project: str,
    provider: Any,
    target_options: Mapping[str, Any],
    auth: Mapping[str, Any] | None = None,
) -> router_manifest.Manifest:
    """router.yaml as ``deployer push`` writes it for ``provider``'s endpoint (auth kind
    from ``route()``, the target's options under ``target``), read back from its text,
    with the access log off and, if given, other ``auth`` for the backend."""
    route = provider.route()
    built = router_manifest.from_backends(
        project, [route], options={route.name: dict(target_options)}
    )
    written = router_manifest.parse(router_manifest.dump(built))
    data = written.model_dump()
    data["access_log"] = {"enabled": False}
    if auth is not None:
        data["backends"][0]["auth"] = dict(auth)
    return router_manifest.Manifest.model_validate(data)


class RouterInProcess:
    """``with RouterInProcess(manifest) as router:`` serves on ``router.url``."""

    def __init__(self, manifest: router_manifest.Manifest) -> None:
        self.manifest = manifest
        self.port = 0
        self.router: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RouterInProcess:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        from deployer.router.app import Router

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self.router = Router(self.manifest, None, host="127.0.0.1", port=0)
            self.port = loop.run_until_complete(self.router.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self.router.stop(1.0))
        loop.close()

    def call(self, coroutine: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(60)

    def upstream(self, index: int = 0) -> Any:
        return self.router.snapshot.upstreams[index]

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(15)
