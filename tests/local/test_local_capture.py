"""The local target's capture: a push with monitoring.capture mounts a host folder the
image writes its records to; LocalProvider.captured() reads them back with the request
ids the clients sent (real Docker engine)."""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from docker_support import BASE_IMAGE, free_port

from deployer.local import LocalProvider
from deployer.local.capture import CONTAINER_FOLDER
from deployer.providers import ProjectInfo, Release, Strategy, Target, UsageError
from deployer.providers.monitoring import CapturedRecord, CaptureSpec

pytestmark = pytest.mark.docker
ROW = [5.1, 3.5, 1.4, 0.2]


def wait_for_records(provider: LocalProvider, count: int) -> list[CapturedRecord]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        records = list(provider.captured())
        if len(records) >= count:
            return records
        time.sleep(0.1)
    pytest.fail(f"expected {count} captured records, got {len(list(provider.captured()))}")


def test_a_pushed_target_captures_and_reads_back(
    docker: Any, iris_image: Any, tmp_path: Path
) -> None:
    options = {"port": free_port(), "startup_timeout": 120}
    provider = LocalProvider(
        Target("captured", "local", options),
        ProjectInfo("iris-capture", base_image=BASE_IMAGE, root=str(tmp_path)),
    )
    with pytest.raises(UsageError, match="captured nothing"):
        provider.captured()
    release = Release("iris-capture", iris_image, [ROW], {"width": 4})
    spec = CaptureSpec(sample=1.0, drop=("f3",))
    started = datetime.now(timezone.utc)
    try:
        deployment = provider.deploy(
            dataclasses.replace(release, capture=spec),
            iris_image.id,
            Strategy.parse("all-at-once"),
            lambda _m: None,
        )
        status = provider.wait(deployment, 120, lambda _m: None)
        assert status.healthy, status.reason
        url = f"http://127.0.0.1:{options['port']}/invocations"
        ids = [f"client-{i}" for i in range(5)]
        for request_id in ids:
            answer = httpx.post(
                url, json={"instances": [ROW]}, headers={"X-Request-Id": request_id}
            )
            assert answer.status_code == 200 and answer.headers["x-request-id"] == request_id
        folder = tmp_path / ".deployer" / "capture" / "captured"
        (folder / "capture-00000000T000000000000Z-1-000001.jsonl").write_text("not json\n")
        records = wait_for_records(provider, len(ids))
        mine = [r for r in records if r.request_id in ids]
        assert sorted(r.request_id for r in mine) == ids
        assert all(
            r.version == release.version and r.time >= started.replace(microsecond=0) for r in mine
        )
        assert mine[0].rows == [{"f0": 5.1, "f1": 3.5, "f2": 1.4}]  # f3 dropped
        assert mine[0].predictions == [0]
        later = list(provider.captured(since=max(r.time for r in records)))
        assert len(later) >= 1 and all(r.time >= max(x.time for x in records) for r in later)
        container = docker.containers.get(status.details["container"])
        mounts = {m["Destination"]: m["Source"] for m in container.attrs["Mounts"]}
        assert mounts[CONTAINER_FOLDER] == str(folder)
    finally:
        provider.destroy(lambda _m: None)
    assert provider.status().state == "absent"
