"""Helpers shared by the Azure provider tests (fixtures live in conftest.py)."""

from __future__ import annotations

import secrets
import time
from typing import Any

from azure_fake import TOKEN, FakeAzureML

from deployer.image.build import Image
from deployer.providers import Release

ML_SCOPE = "https://ml.azure.com/.default"


class FakeCredential:
    """A TokenCredential handing out the token the fake ARM accepts, and for Azure ML's
    own scope (Microsoft Entra auth of a scoring URI) a new token per call, living
    ``entra_lifetime`` seconds, recorded in ``entra_tokens`` (token -> expiry). The expiry
    recorded (what the fake scoring URI enforces) is ``entra_grace`` seconds later than the
    one the token says (what the router plans its renewal by)."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []
        self.entra_lifetime = 3600
        self.entra_grace = 0
        self.entra_tokens: dict[str, float] = {}

    def get_token(self, *scopes: str, **_: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        if scopes == (ML_SCOPE,):
            token = f"entra-token-{len(self.entra_tokens)}-{secrets.token_hex(8)}"
            expires = int(time.time()) + self.entra_lifetime
            self.entra_tokens[token] = expires + self.entra_grace
            return AccessToken(token, expires)
        return AccessToken(TOKEN, int(time.time()) + 3600)


def target_options(fake: FakeAzureML, **options: Any) -> dict[str, Any]:
    return {
        "provider": "azureml",
        "subscription_id": fake.subscription,
        "resource_group": fake.resource_group,
        "workspace": fake.workspace,
        "resource_manager_endpoint": fake.url,
        "poll_interval": 0.02,
        "retry_backoff": 0.02,
        **options,
    }


def release(number: int, project: str = "iris") -> Release:
    """A release whose version differs per ``number`` (no image needed: deploy takes a ref)."""
    image = Image(
        ref=f"{project}:{number}",
        id="sha256:" + f"{number:x}" * 64,
        size=1,
        labels={"dev.deployer.model.sha256": f"{number + 10:x}" * 64},
    )
    return Release(project, image, [[0, 0, 0, 0], [0, 0, 0, 0]], {"width": 4})


def image_ref(fake: FakeAzureML, number: int) -> str:
    return f"{fake.registry_host}/iris@sha256:{f'{number:x}' * 64}"
