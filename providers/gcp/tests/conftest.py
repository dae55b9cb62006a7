"""Fixtures for the Vertex provider: a fake Vertex AI gRPC server on 127.0.0.1 over TLS,
Application Default Credentials that yield a test token, and an Artifact-Registry-like
docker registry that accepts that token as the password of ``oauth2accesstoken``.

gRPC reads its default root certificates once per process (when the first TLS channel
is made), so the test CA is generated and named by GRPC_DEFAULT_SSL_ROOTS_FILE_PATH here,
at import, before any test creates a channel.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def _make_certificate(folder: Path) -> tuple[bytes, bytes]:
    """A self-signed certificate for 127.0.0.1 and localhost (also its own CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-vertex.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (folder / "ca.pem").write_bytes(cert_pem)
    return cert_pem, key_pem


_TLS = Path(tempfile.mkdtemp(prefix="deployer-gcp-tls-"))
CERTIFICATE, KEY = _make_certificate(_TLS)
os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(_TLS / "ca.pem")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # no GOAWAY notes when the fake stops

sys.path.insert(0, str(Path(__file__).resolve().parent))

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
