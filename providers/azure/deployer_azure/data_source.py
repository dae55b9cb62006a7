"""``az://<account>/<container>/<blob path>`` data URIs, read with azure-storage-blob
(also ``abfs[s]://<container>@<account>.dfs.core.windows.net/<path>``, as Spark and
adlfs write them: the same blob, read through the Blob endpoint).

Credentials, the first that applies: AZURE_STORAGE_CONNECTION_STRING when its
AccountName is the URI's account (its BlobEndpoint too: Azurite, sovereign clouds);
AZURE_STORAGE_KEY when AZURE_STORAGE_ACCOUNT is the URI's account (the variables the
Azure CLI reads); else azure-identity's DefaultAzureCredential (``az login``, a service
principal's AZURE_* variables, workload or managed identity), which needs a data role
such as Storage Blob Data Reader on the container.
"""

from __future__ import annotations

import io
import os
from typing import IO, Any

from deployer.providers import RemoteObject, UsageError, split_uri
from deployer_azure import auth

FORM = "az://<account>/<container>/<blob path>"
ABFS_FORM = "abfs[s]://<container>@<account>.dfs.core.windows.net/<path>"
HINT = (
    "set AZURE_STORAGE_CONNECTION_STRING, or run `az login` with a role such as "
    "Storage Blob Data Reader on the container"
)


STORAGE_SCOPE = "https://storage.azure.com/.default"  # the token audience of Azure Storage


def _settings(text: str) -> dict[str, str]:
    pairs = (part.split("=", 1) for part in text.split(";") if "=" in part)
    return {key.strip().lower(): value.strip() for key, value in pairs}


def service_client(account: str) -> Any:
    """A BlobServiceClient for ``account`` with the first credentials that apply."""
    from azure.storage.blob import BlobServiceClient

    connection = os.environ.get("AZURE_STORAGE_CONNECTION_STRING", "")
    if connection and _settings(connection).get("accountname") == account:
        return BlobServiceClient.from_connection_string(connection)
    url = f"https://{account}.blob.core.windows.net"
    key = os.environ.get("AZURE_STORAGE_KEY")
    if key and os.environ.get("AZURE_STORAGE_ACCOUNT") == account:
        return BlobServiceClient(url, credential={"account_name": account, "account_key": key})
    credential = auth.make_credential()
    # A token first: without credentials this fails at once (ClientAuthenticationError),
    # where the storage client would retry the request with back-off for over a minute.
    credential.get_token(STORAGE_SCOPE)
    return BlobServiceClient(url, credential=credential)


class _Stream(io.RawIOBase):
    """A StorageStreamDownloader as a readable binary stream."""

    def __init__(self, downloader: Any) -> None:
        self._downloader = downloader

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._downloader.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _abfs_parts(uri: str) -> list[str]:
    """account, container and path of an ``abfs[s]://container@account.dfs...`` URI."""
    where, path = split_uri(uri, 2, ABFS_FORM)
    container, at, host = where.partition("@")
    account = host.split(".", 1)[0]
    if not at or not container or not account or ".dfs." not in f".{host}.":
        raise UsageError(f"{uri}: not a data URI of the form {ABFS_FORM}")
    return [account, container, path]


def open_abfs(uri: str) -> RemoteObject:
    """``abfs://`` and ``abfss://`` URIs, read as ``open_az`` reads their blob."""
    return _open(uri, _abfs_parts(uri))


def open_az(uri: str) -> RemoteObject:
    """The blob ``uri`` names, its size from its properties; a UsageError naming the URI
    when the container or the blob does not exist, or credentials are missing or refused."""
    return _open(uri, split_uri(uri, 3, FORM))


def _open(uri: str, parts: list[str]) -> RemoteObject:
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
    )

    account, container, name = parts
    try:
        blob = service_client(account).get_blob_client(container, name)
        size = int(blob.get_blob_properties().size)
    except ResourceNotFoundError as exc:
        if getattr(exc, "error_code", None) == "ContainerNotFound":
            raise UsageError(f"{uri}: the container {container!r} does not exist") from None
        raise UsageError(f"{uri}: no such blob in the container {container!r}") from None
    except ClientAuthenticationError as exc:
        reason = str(exc).splitlines()[0]
        raise UsageError(f"{uri}: Azure credentials failed: {reason}", hint=HINT) from None
    except HttpResponseError as exc:
        if exc.status_code == 403:
            raise UsageError(f"{uri}: Azure Storage refused access (403)", hint=HINT) from None
        raise UsageError(f"{uri}: Azure Storage answered {exc.status_code}: {exc.reason}") from None
    except AzureError as exc:
        raise UsageError(f"{uri}: cannot read from Azure Storage: {exc}") from None

    def reader() -> IO[bytes]:
        return io.BufferedReader(_Stream(blob.download_blob()), 1 << 20)

    return RemoteObject(uri, size, reader)
