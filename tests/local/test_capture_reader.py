"""Reading the local target's capture folder: records oldest first, ``since`` filters,
a bad line is skipped and counted, an unfinished last line waits for the next read; and
the mount the model container gets."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from deployer.local.capture import CONTAINER_FOLDER, CaptureReader, capture_mount, host_folder
from deployer.providers.monitoring import CAPTURE_ENV, CaptureSpec


def line(request_id: str, second: int) -> str:
    return json.dumps({"request_id": request_id, "time": f"2026-12-07T04:00:{second:02d}.000Z"})


def test_records_oldest_first_bad_lines_counted_unfinished_left(tmp_path: Path) -> None:
    (tmp_path / "capture-b.jsonl").write_text(f"{line('r1', 1)}\n[1, 2]\n{line('r3', 3)}\n")
    (tmp_path / "capture-a.jsonl").write_text(f"{line('r2', 2)}\nnot json\n{line('r4', 4)}")
    (tmp_path / "other.txt").write_text("ignored\n")
    reader = CaptureReader([tmp_path])
    assert [r.request_id for r in reader.records()] == ["r1", "r2", "r3"]
    assert reader.skipped == 2
    since = datetime(2026, 12, 7, 4, 0, 2, tzinfo=timezone.utc)
    assert [r.request_id for r in CaptureReader([tmp_path]).records(since)] == ["r2", "r3"]


def test_the_mount_env_and_folder(tmp_path: Path) -> None:
    spec = CaptureSpec(sample=0.5, destination="captures")
    mount = capture_mount(spec, tmp_path, "t", "v1")
    folder = tmp_path / "captures"
    assert folder.is_dir() and mount.volumes == {
        str(folder): {"bind": CONTAINER_FOLDER, "mode": "rw"}
    }
    assert json.loads(mount.environment[CAPTURE_ENV])["destination"] == CONTAINER_FOLDER
    assert mount.environment["DEPLOYER_VERSION"] == "v1"
    owner = folder.stat().st_uid
    assert mount.user == f"{owner}:{owner if os.getuid() == 0 else os.getgid()}"
    remote = CaptureSpec(sample=1.0, destination="s3://bucket/x")
    assert host_folder(remote, tmp_path, "t") == tmp_path / ".deployer" / "capture" / "t"
    assert capture_mount(None, tmp_path, "t", "v1").volumes == {}
