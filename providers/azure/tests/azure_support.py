"""Helpers shared by the Azure provider tests (fixtures live in conftest.py)."""

from __future__ import annotations

import time
from typing import Any

from azure_fake import TOKEN, FakeAzureML

from deployer.image.build import Image
from deployer.providers import Release


class FakeCredential:
    """A TokenCredential handing out the token the fake ARM accepts."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
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
