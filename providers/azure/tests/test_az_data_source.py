"""``az://`` data URIs through deployer.providers.open_uri, at the wire against Azurite
(Microsoft's Azure Storage emulator) on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azurite_support import ACCOUNT, azurite_blob

from deployer.providers import UsageError, open_uri

BODY = b"sepal,petal,species\n" + b"5.1,1.4,setosa\n" * 200_000  # 3 MB: several chunks
URI = f"az://{ACCOUNT}/holdouts/data/holdout.csv"


@pytest.fixture(scope="module")
def azurite() -> Iterator[str]:
    from azure.storage.blob import BlobServiceClient

    with azurite_blob() as connection:
        service = BlobServiceClient.from_connection_string(connection)
        service.create_container("holdouts")
        service.get_blob_client("holdouts", "data/holdout.csv").upload_blob(BODY)
        yield connection


@pytest.fixture
def connected(azurite: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    return azurite


def test_a_blob_is_read_with_its_size(connected: str) -> None:
    found = open_uri(URI)
    assert (found.name, found.size) == (URI, len(BODY))
    with found.open() as stream:
        head = stream.read(20)
        assert head == BODY[:20]
        assert head + stream.read() == BODY


@pytest.mark.parametrize("scheme", ["abfs", "abfss"])
def test_an_abfs_uri_reads_the_same_blob(connected: str, scheme: str) -> None:
    uri = f"{scheme}://holdouts@{ACCOUNT}.dfs.core.windows.net/data/holdout.csv"
    found = open_uri(uri)
    assert (found.name, found.size) == (uri, len(BODY))
    with found.open() as stream:
        assert stream.read() == BODY


@pytest.mark.parametrize(
    "uri", ["abfs://holdouts/data.csv", "abfs://@acct.dfs.core.windows.net/x", "abfs://c@acct/x"]
)
def test_an_abfs_uri_without_container_and_account_says_the_form(uri: str) -> None:
    with pytest.raises(UsageError, match=r"abfs\[s\]://<container>@<account>\.dfs"):
        open_uri(uri)


def test_a_missing_blob_names_the_uri(connected: str) -> None:
    with pytest.raises(UsageError, match=rf"az://{ACCOUNT}/holdouts/nope\.csv: no such blob"):
        open_uri(f"az://{ACCOUNT}/holdouts/nope.csv")


def test_a_missing_container_names_the_uri_and_the_container(connected: str) -> None:
    expected = rf"az://{ACCOUNT}/gone/x\.csv: the container 'gone' does not exist"
    with pytest.raises(UsageError, match=expected):
        open_uri(f"az://{ACCOUNT}/gone/x.csv")


def test_a_wrong_account_key_is_a_usage_error(
    azurite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = azurite.replace("AccountKey=Eby8", "AccountKey=AAAA")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", wrong)
    with pytest.raises(UsageError, match=rf"{URI}: Azure (credentials failed|Storage refused)"):
        open_uri(URI)


def test_no_credentials_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """No connection string or key: azure-identity's chain, which finds nothing."""
    from azure.identity import CredentialUnavailableError

    import deployer_azure.auth

    class NoCredential:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            raise CredentialUnavailableError("DefaultAzureCredential failed to retrieve a token")

    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("AZURE_STORAGE_KEY", raising=False)
    monkeypatch.setattr(deployer_azure.auth, "make_credential", NoCredential)
    with pytest.raises(UsageError, match=r"az://acct/c/x\.csv: Azure credentials failed"):
        open_uri("az://acct/c/x.csv")


@pytest.mark.parametrize("uri", ["az://acct/container", "az://acct//blob", "az://acct"])
def test_a_uri_without_account_container_and_blob_says_the_form(uri: str) -> None:
    with pytest.raises(UsageError, match=r"the form az://<account>/<container>/<blob path>"):
        open_uri(uri)
