"""Fixtures for the Vertex provider: a fake Vertex AI gRPC server on 127.0.0.1 over TLS,
Application Default Credentials that yield a test token, and an Artifact-Registry-like
docker registry that accepts that token as the password of ``oauth2accesstoken``.

gRPC reads its default root certificates once per process (when the first TLS channel
is made), so the test CA is generated and named by GRPC_DEFAULT_SSL_ROOTS_FILE_PATH here,
at import, before any test creates a channel.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tls_support import make_certificate

_TLS = make_certificate(Path(tempfile.mkdtemp(prefix="deployer-gcp-tls-")))
CERTIFICATE, KEY = _TLS.cert.read_bytes(), _TLS.key.read_bytes()
os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(_TLS.cert)
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # no GOAWAY notes when the fake stops


import google.auth  # noqa: E402  (google-auth never loads grpc)
from docker_support import LocalRegistry, run_registry  # noqa: E402
from vertex_fake import FakeVertex  # noqa: E402
from vertex_support import PROJECT_ID, REGISTRY_USER, TOKEN, FakeCredentials  # noqa: E402


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeVertex]:
    fake = FakeVertex(CERTIFICATE, KEY)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def vertex(fake_server: FakeVertex) -> Iterator[FakeVertex]:
    """The fake Vertex AI, empty, requiring the test token."""
    fake_server.reset()
    fake_server.expected_token = TOKEN
    fake_server.bigquery.expected_token = TOKEN
    yield fake_server
    fake_server.reset()


@pytest.fixture
def adc(monkeypatch: pytest.MonkeyPatch) -> Any:
    """google.auth.default() returns credentials minting TOKEN (the real call path)."""
    credentials = FakeCredentials(TOKEN)

    def default(scopes: Any = None, **kwargs: Any) -> tuple[Any, str]:
        credentials.calls.append({"scopes": scopes, **kwargs})
        return credentials, PROJECT_ID

    monkeypatch.setattr(google.auth, "default", default)
    return credentials


@pytest.fixture(scope="session")
def gcp_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A registry accepting ``oauth2accesstoken`` / TOKEN, as Artifact Registry accepts an
    access token."""
    with run_registry(tmp_path_factory.mktemp("gcp-registry"), REGISTRY_USER, TOKEN) as reg:
        yield reg
