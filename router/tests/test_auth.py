"""Signing for each cloud, checked by fake cloud endpoints on 127.0.0.1 with the real
libraries: SigV4 verified with botocore, Google OAuth tokens minted by google-auth from a
service-account key against a fake token endpoint, an Azure ML key, a bearer token.

The signer plugins (router/tests/cloud_signers.py) are registered by replacing the
router's provider lookup, so the router runs in this process (RouterThread).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloud_signers import AWS, PROVIDERS, verify_sigv4
from router_support import JSON_BODY, FakeBackend, LogRecords, RouterThread, manifest, wait_until

from deployer.router import plugins
from deployer_router.credentials import refresh_once

AUDIENCE = "https://oauth2.googleapis.com/token"  # what google-auth signs for


@pytest.fixture
def cloud_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "provider_class", PROVIDERS.__getitem__)


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """botocore's default chain finds these (environment), and nothing else."""
    for name in (
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS["key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS["secret"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", AWS["token"])


def managed(name: str, provider: str, url: str, auth: Any, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "provider": provider,
        "url": url,
        "auth": auth,
        "health": {"source": "none"},
        **fields,
    }


def test_sigv4_for_sagemaker_runtime_verified_with_botocore(
    cloud_plugins: None, aws_environment: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    runtime = FakeBackend("sagemaker")
    runtime.check = verify_sigv4
    invoke = runtime.url + "/endpoints/iris-prod/invocations"
    data = manifest(backends=[managed("aws", "sagemaker", invoke, "sigv4", region="eu-west-1")])
    try:
        with RouterThread(data) as router, httpx.Client(timeout=10) as client:
            for path in ("/invocations", "/v2/models/iris/infer?x=1"):
                answer = client.post(
                    router.url + path,
                    content=JSON_BODY,
                    headers={
                        "content-type": "application/json",
                        "authorization": "Bearer the-client-s-own",
                        "x-amzn-sagemaker-custom-attributes": "method=predict_proba",
                    },
                )
                assert answer.status_code == 200, answer.text
                assert answer.headers["x-deployer-backend"] == "aws"
            seen = runtime.seen[-1]
            # the fixed invoke URL, whatever the client's path; body and headers kept
            assert seen["path"] == "/endpoints/iris-prod/invocations"
            assert seen["body"] == JSON_BODY
            assert seen["headers"]["x-amzn-sagemaker-custom-attributes"] == "method=predict_proba"
            assert "the-client-s-own" not in seen["headers"]["authorization"]
            # the verifier is not a rubber stamp: a changed body or an old signature fails
            tampered = dict(seen["headers"])
            assert verify_sigv4("POST", seen["path"], tampered, JSON_BODY + b" ") is not None
            tampered["x-amz-date"] = "20200101T000000Z"
            assert verify_sigv4("POST", seen["path"], tampered, JSON_BODY) is not None
    finally:
        runtime.close()
    # the router's own records were captured, so the check below can see a leak
    assert "router listening" in caplog.text
    assert AWS["secret"] not in caplog.text and AWS["token"] not in caplog.text


def test_missing_aws_credentials_keep_the_backend_out_with_the_reason(
    cloud_plugins: None, aws_environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    runtime = FakeBackend("sagemaker")
    data = manifest(
        backends=[
            managed(
                "aws",
                "sagemaker",
                runtime.url + "/endpoints/e/invocations",
                "sigv4",
                region="eu-west-1",
            )
        ]
    )
    try:
        with RouterThread(data) as router:
            answer = httpx.post(router.url + "/invocations", content=JSON_BODY, timeout=10)
            assert answer.status_code == 503
            reason = answer.json()["unavailable"]["aws"]
            assert reason.startswith("credentials not ready: RuntimeError: no AWS credentials")
            assert runtime.total() == 0
    finally:
        runtime.close()


class TokenServer:
    """A fake Google OAuth token endpoint: checks the service account's signed JWT with
    google-auth and issues short-lived access tokens."""

    # seconds: the router must refresh before each expires. It renews half-way, so a
    # refresh has LIFETIME / 2 to finish, which a busy machine needs
    LIFETIME = 8

    def __init__(self, public_pem: bytes) -> None:
        self.public_pem = public_pem
        self.issued: dict[str, float] = {}  # token -> expiry (monotonic)
        self.lock = threading.Lock()
        self.backend = FakeBackend("oauth")
        self.backend.check = self._mint

    @property
    def uri(self) -> str:
        return self.backend.url + "/token"

    def _mint(self, method: str, path: str, headers: dict[str, str], body: bytes) -> str | None:
        from urllib.parse import parse_qs

        from google.auth import jwt

        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return "unsupported grant type"
        try:
            claims = jwt.decode(form["assertion"], certs=self.public_pem, audience=AUDIENCE)
        except Exception as exc:
            return f"bad assertion: {exc}"
        if "cloud-platform" not in claims.get("scope", ""):
            return "missing scope"
        with self.lock:
            token = f"ya29.router-test-{len(self.issued)}"
            self.issued[token] = time.monotonic() + self.LIFETIME
        self.backend.body = json.dumps(
            {"access_token": token, "expires_in": self.LIFETIME, "token_type": "Bearer"}
        ).encode()
        return None

    def valid(self, token: str) -> bool:
        with self.lock:
            return self.issued.get(token, 0) > time.monotonic()


@pytest.fixture
def google_service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    server = TokenServer(public)
    account = {
        "type": "service_account",
        "project_id": "router-test",
        "private_key_id": "k1",
        "private_key": private,
        "client_email": "router@router-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": server.uri,
    }
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(account))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    yield server
    server.backend.close()


def test_google_oauth_tokens_for_vertex_raw_predict_refreshed_before_expiry(
    cloud_plugins: None, google_service_account: TokenServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = google_service_account
    vertex = FakeBackend("vertex")
    used: list[str] = []

    def check(method: str, path: str, headers: dict[str, str], body: bytes) -> str | None:
        token = headers.get("authorization", "").removeprefix("Bearer ")
        used.append(token)
        return None if tokens.valid(token) else "invalid or expired access token"

    vertex.check = check
    raw = vertex.url + "/v1/projects/p/locations/europe-west4/endpoints/123:rawPredict"
    data = manifest(backends=[managed("gcp", "vertex", raw, "google-oauth")])
    try:
        with RouterThread(data) as router, httpx.Client(timeout=10) as client:
            statuses = []

            def three_tokens_used() -> bool:
                answer = client.post(router.url + "/invocations", content=JSON_BODY)
                statuses.append(answer.status_code)
                return len(set(used)) >= 3

            # requests until two refreshes have happened (each one replaced a live token)
            wait_until(
                three_tokens_used, timeout=6 * TokenServer.LIFETIME, step=0.1, message="3 tokens"
            )
        assert set(statuses) == {200}, statuses
        assert (
            vertex.seen[-1]["path"]
            == "/v1/projects/p/locations/europe-west4/endpoints/123:rawPredict"
        )
        assert len(set(used)) >= 3  # refreshed ahead of each expiry, never an expired token
    finally:
        vertex.close()
    assert "router listening" in caplog.text  # the router's records were captured
    assert not any(token in caplog.text for token in tokens.issued)


def test_azure_ml_key_and_bearer_tokens(
    cloud_plugins: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ROUTER_TEST_AZURE_KEY", "azure-endpoint-key-1")
    monkeypatch.setenv("ROUTER_TEST_K8S_TOKEN", "k8s-token-1")
    token_file = tmp_path / "token"
    token_file.write_text("file-token-1\n")
    azure, k8s_env, k8s_file = FakeBackend("azure"), FakeBackend("k8s"), FakeBackend("k8s2")

    def expects(value: str) -> Any:
        def check(method: str, path: str, headers: dict[str, str], body: bytes) -> str | None:
            return None if headers.get("authorization") == value else "wrong credentials"

        return check

    azure.check = expects("Bearer azure-endpoint-key-1")
    k8s_env.check = expects("Bearer k8s-token-1")
    k8s_file.check = expects("Bearer file-token-1")
    data = manifest(
        policy="weighted",
        backends=[
            managed(
                "azure",
                "azureml",
                azure.url + "/score",
                {"kind": "azure-key", "key_env": "ROUTER_TEST_AZURE_KEY"},
            ),
            {
                "name": "k8s-env",
                "provider": "kubernetes",
                "url": k8s_env.url,
                "auth": {"kind": "bearer", "token_env": "ROUTER_TEST_K8S_TOKEN"},
                "health": {"source": "none"},
            },
            {
                "name": "k8s-file",
                "provider": "kubernetes",
                "url": k8s_file.url + "/base",
                "auth": {"kind": "bearer", "token_file": str(token_file)},
                "health": {"source": "none"},
            },
        ],
    )
    try:
        with RouterThread(data) as router, httpx.Client(timeout=10) as client:
            for _ in range(6):
                answer = client.post(router.url + "/v2/models/iris/infer", content=JSON_BODY)
                assert answer.status_code == 200, answer.text
        assert azure.seen and k8s_env.seen and k8s_file.seen
        assert azure.seen[-1]["path"] == "/score"  # fixed scoring URI
        assert k8s_env.seen[-1]["path"] == "/v2/models/iris/infer"  # path appended
        assert k8s_file.seen[-1]["path"] == "/base/v2/models/iris/infer"
    finally:
        for fake in (azure, k8s_env, k8s_file):
            fake.close()


def test_a_cloud_auth_kind_without_its_plugin_names_the_distribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from deployer.errors import MissingDependencyError
    from deployer.router.auth import signer_for
    from deployer.router.manifest import BackendConfig

    class NoSigner:
        name = "vertex"

    monkeypatch.setattr(plugins, "provider_class", lambda name: NoSigner)
    backend = BackendConfig(
        name="gcp", provider="vertex", url="https://x/y:rawPredict", auth="google-oauth"
    )  # type: ignore[arg-type]
    with pytest.raises(MissingDependencyError) as caught:
        signer_for(backend)
    assert caught.value.exit_code == 3
    assert "deployer-gcp" in str(caught.value)


def test_signer_refresh_failure_keeps_the_last_credentials(
    cloud_plugins: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh that fails after a good one does not take the backend out."""
    monkeypatch.setenv("ROUTER_TEST_AZURE_KEY", "key-a")
    azure = FakeBackend("azure")
    data = manifest(
        backends=[
            managed(
                "azure",
                "azureml",
                azure.url + "/score",
                {"kind": "azure-key", "key_env": "ROUTER_TEST_AZURE_KEY"},
            )
        ]
    )
    try:
        with RouterThread(data) as router:
            upstream = router.router.snapshot.upstreams[0]
            monkeypatch.delenv("ROUTER_TEST_AZURE_KEY")
            router.call(refresh_once(upstream, timeout=10))
            answer = httpx.post(router.url + "/score", content=JSON_BODY, timeout=10)
            assert answer.status_code == 200
            assert azure.seen[-1]["headers"]["authorization"] == "Bearer key-a"
    finally:
        azure.close()


def test_credentials_rejected_by_the_backend_are_refreshed_at_once(tmp_path: Path) -> None:
    """A token rotated where it is read (a file here; a regenerated cloud key likewise)
    and refused with 403 by the backend is fetched again within seconds, not at the
    signer's next scheduled refresh (60 s for a token file)."""
    token_file = tmp_path / "token"
    token_file.write_text("token-1\n")
    backend = FakeBackend("k8s")
    accepted = {"value": "Bearer token-1"}
    backend.check = lambda method, path, headers, body: (
        None if headers.get("authorization") == accepted["value"] else "wrong credentials"
    )
    data = manifest(
        backends=[
            {
                "name": "k8s",
                "provider": "kubernetes",
                "url": backend.url,
                "auth": {"kind": "bearer", "token_file": str(token_file)},
                "health": {"source": "none"},
            }
        ],
    )
    try:
        with (
            LogRecords("deployer.router") as logs,
            RouterThread(data) as router,
            httpx.Client(timeout=10) as client,
        ):
            assert client.post(router.url + "/invocations", content=JSON_BODY).status_code == 200
            token_file.write_text("token-2\n")  # rotated: the backend now wants token-2
            accepted["value"] = "Bearer token-2"
            assert client.post(router.url + "/invocations", content=JSON_BODY).status_code == 403
            # well before the scheduled re-read (FILE_RECHECK_SECONDS, 60 s)
            wait_until(
                lambda: (
                    client.post(router.url + "/invocations", content=JSON_BODY).status_code == 200
                ),
                timeout=40,
                step=0.2,
                message="the rotated token in use",
            )
        # and because of the rejection, not the schedule
        assert "backend rejected the router's credentials: refreshing them now" in (logs.messages())
    finally:
        backend.close()
