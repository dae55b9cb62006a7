"""``s3://`` data URIs through deployer.providers.open_uri, at the wire against moto's
S3 server on 127.0.0.1 (boto3 reaches it through AWS_ENDPOINT_URL_S3, as a user points
boto3 at any S3 endpoint)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from deployer.providers import UsageError, open_uri

BODY = b"sepal,petal,species\n" + b"5.1,1.4,setosa\n" * 5000


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3 on a free port with one bucket holding ``data/holdout.csv``."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://{host}:{port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        client = boto3.session.Session().client("s3")
        client.create_bucket(Bucket="holdouts")
        client.put_object(Bucket="holdouts", Key="data/holdout.csv", Body=BODY)
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_an_object_is_read_with_its_size(s3: str) -> None:
    found = open_uri("s3://holdouts/data/holdout.csv")
    assert found.name == "s3://holdouts/data/holdout.csv"
    assert found.size == len(BODY)
    stream = found.open()
    try:
        assert stream.read() == BODY
    finally:
        stream.close()


def test_a_missing_object_names_the_uri(s3: str) -> None:
    with pytest.raises(UsageError, match=r"s3://holdouts/nope\.csv: no such object"):
        open_uri("s3://holdouts/nope.csv")


def test_a_missing_bucket_names_the_uri_and_the_bucket(s3: str) -> None:
    with pytest.raises(UsageError, match=r"s3://gone/x\.csv: the bucket 'gone' does not exist"):
        open_uri("s3://gone/x.csv")


def test_no_credentials_is_a_usage_error(s3: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(UsageError, match=r"s3://holdouts/data/holdout\.csv: no AWS credentials"):
        open_uri("s3://holdouts/data/holdout.csv")


@pytest.mark.parametrize("uri", ["s3://holdouts", "s3://holdouts/", "s3:///key"])
def test_a_uri_without_bucket_and_key_says_the_form(uri: str) -> None:
    with pytest.raises(UsageError, match=r"not a data URI of the form s3://<bucket>/<key>"):
        open_uri(uri)
