"""``gs://`` data URIs through deployer.providers.open_uri, at the wire against a fake of
Cloud Storage's JSON API (gcs_fake) that google-cloud-storage reaches through
STORAGE_EMULATOR_HOST."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gcs_fake import FakeGcs

from deployer.providers import UsageError, open_uri

BODY = b"sepal,petal,species\n" + b"5.1,1.4,setosa\n" * 5000


@pytest.fixture
def gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGcs]:
    fake = FakeGcs({"holdouts": {"data/holdout 1.csv": BODY}}).start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake.host)
    try:
        yield fake
    finally:
        fake.stop()


def test_an_object_is_read_with_its_size(gcs: FakeGcs) -> None:
    found = open_uri("gs://holdouts/data/holdout 1.csv")
    assert (found.name, found.size) == ("gs://holdouts/data/holdout 1.csv", len(BODY))
    with found.open() as stream:
        assert stream.read() == BODY
    obj = "/b/holdouts/o/data%2Fholdout%201.csv"  # the object name, percent-encoded
    assert {(r.path, r.query.get("alt", [""])[0]) for r in gcs.requests} <= {
        ("/storage/v1/b/holdouts", ""),
        (f"/storage/v1{obj}", ""),  # metadata: the size
        (f"/download/storage/v1{obj}", "media"),
    }
    assert any(r.path == f"/storage/v1{obj}" and "alt" not in r.query for r in gcs.requests)
    assert any(r.path == f"/download/storage/v1{obj}" for r in gcs.requests)


def test_a_missing_object_names_the_uri(gcs: FakeGcs) -> None:
    with pytest.raises(UsageError, match=r"gs://holdouts/nope\.csv: no such object"):
        open_uri("gs://holdouts/nope.csv")


def test_a_missing_bucket_names_the_uri_and_the_bucket(gcs: FakeGcs) -> None:
    with pytest.raises(UsageError, match=r"gs://gone/x\.csv: the bucket 'gone' does not exist"):
        open_uri("gs://gone/x.csv")
    assert gcs.requests[-1].path == "/storage/v1/b/gone"


def test_no_credentials_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json")
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # never probe the metadata server
    monkeypatch.setenv("CLOUDSDK_CONFIG", "/nonexistent")
    with pytest.raises(UsageError, match=r"gs://holdouts/x\.csv: no Google Cloud credentials"):
        open_uri("gs://holdouts/x.csv")


def test_a_uri_without_bucket_and_object_says_the_form() -> None:
    with pytest.raises(UsageError, match=r"not a data URI of the form gs://<bucket>/<object>"):
        open_uri("gs://holdouts")
