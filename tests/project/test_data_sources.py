"""deployer.providers.open_uri: the scheme picks the opener; what is not installed or
not known is a UsageError naming the URI (each cloud's opener is tested with its
provider, against its storage at the wire)."""

from __future__ import annotations

import io
from importlib import metadata
from typing import Any

import pytest

from deployer.providers import UsageError, data_sources, open_uri


def test_an_unknown_scheme_names_the_known_ones() -> None:
    with pytest.raises(UsageError, match=r"ftp://h/x: no installed distribution reads ftp://"):
        open_uri("ftp://h/x")


def test_a_path_without_a_scheme_is_refused() -> None:
    with pytest.raises(UsageError, match=r"holdout\.csv: not a URI"):
        open_uri("holdout.csv")


def test_a_known_scheme_without_its_distribution_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metadata, "entry_points", lambda **_: [])
    monkeypatch.setitem(data_sources.DISTRIBUTIONS, "s3", ("deployer-aws", "no_such_mod:f"))
    with pytest.raises(UsageError) as caught:
        open_uri("s3://bucket/key.csv")
    assert "s3://bucket/key.csv: reading s3:// needs the deployer-aws distribution" in str(
        caught.value
    )
    assert caught.value.hint == "pip install deployer-aws"


def test_an_entry_point_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    class Entry:
        name = "mem"

        def load(self) -> Any:
            return lambda uri: data_sources.RemoteObject(uri, 3, lambda: io.BytesIO(b"abc"))

    monkeypatch.setattr(metadata, "entry_points", lambda **_: [Entry()])
    found = open_uri("MEM://x/y")
    assert (found.name, found.size, found.open().read()) == ("MEM://x/y", 3, b"abc")
    assert isinstance(found, data_sources.DataObject)
