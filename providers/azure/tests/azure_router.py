"""The built-in router (deployer_router.app.Router) in this process, on its own event
loop in a thread, with the azureml plugin registered the way the router looks plugins up,
and the manifest ``deployer push`` would write for a provider's live endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from deployer.router import manifest as router_manifest
from deployer.router import plugins
from deployer_router.background import BackgroundRouter


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


class RouterInProcess(BackgroundRouter):
    """``with RouterInProcess(manifest) as router:`` serves on ``router.url``."""

    def upstream(self, index: int = 0) -> Any:
        assert self.router is not None and self.router.snapshot is not None
        return self.router.snapshot.upstreams[index]
