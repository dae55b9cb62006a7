"""The image's own prediction capture: sampling, redaction, the folder's rotation and
bound, a write error (capture stops, serving goes on), X-Request-Id, and every captured
request written once under concurrent load on a real two-worker server."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import httpx
import numpy as np
import pytest
from serving_support import ROWS, ServerFactory, oip_request, scrape, serving_settings

from deployer.providers.monitoring import CAPTURE_STDOUT_PREFIX, CapturedRecord, CaptureSpec
from deployer.serving import routes
from deployer.serving.capture import METRICS, Capture
from deployer.serving.capture_record import build_line, hashed
from deployer.serving.capture_sinks import FolderSink, StdoutSink

NAMES = ("a", "b", "c", "d")


def columns(width: int) -> tuple[str, ...]:
    return NAMES[:width]


class ListSink:
    """Keeps what the writer wrote."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, lines: list[str]) -> None:
        self.lines.extend(lines)

    def close(self) -> None:
        pass


class FullDiskSink(FolderSink):
    """A folder sink whose files are /dev/full: every flush fails with ENOSPC."""

    def open_file(self, path: Path) -> IO[bytes]:
        return open("/dev/full", "wb")


def run_capture(spec: CaptureSpec, draw: float, requests: int = 3, **kwargs: Any) -> Capture:
    """A capture that drew ``draw`` for every request, after ``requests`` requests."""
    capture = Capture(spec, columns, "v1", rand=lambda: draw, **kwargs)
    capture.start()
    for i in range(requests):
        capture.observe(f"r{i}", ROWS[:2], np.array([0, 1]))
    capture.close()
    return capture


@pytest.mark.parametrize(("sample", "draw", "captured"), [(1.0, 0.999, 3), (0.5, 0.5, 0)])
def test_a_request_is_captured_when_its_draw_is_under_the_sample(
    sample: float, draw: float, captured: int
) -> None:
    sink = ListSink()
    run_capture(CaptureSpec(sample=sample), draw, sink=sink)
    assert len(sink.lines) == captured
    if captured:
        record = CapturedRecord.from_json(json.loads(sink.lines[0]))
        assert record.request_id == "r0" and record.version == "v1"
        assert record.rows == [dict(zip(NAMES, row, strict=True)) for row in ROWS[:2].tolist()]
        assert record.predictions == [0, 1]


def test_redacted_fields_are_dropped_or_hashed() -> None:
    spec = CaptureSpec(sample=1.0, drop=("b",), hash=("c",))
    line = build_line(spec, None, "r", 0.0, ROWS[:1], np.array(["setosa"]), columns)
    row = json.loads(line)["rows"][0]
    assert set(row) == {"a", "c", "d"}
    value_text = json.dumps(ROWS[0, 2].item(), separators=(",", ":"))
    assert row["c"] == "sha256:" + hashlib.sha256(value_text.encode()).hexdigest()
    assert row["c"] == hashed(ROWS[0, 2].item())
    assert json.loads(line)["predictions"] == ["setosa"]


def test_inputs_or_outputs_off_leave_their_field_out() -> None:
    line = build_line(CaptureSpec(1.0, inputs=False), None, "r", 0.0, ROWS, ROWS[:, 0], columns)
    assert "rows" not in json.loads(line) and "predictions" in json.loads(line)
    line = build_line(CaptureSpec(1.0, outputs=False), None, "r", 0.0, ROWS, ROWS[:, 0], columns)
    assert "predictions" not in json.loads(line) and "rows" in json.loads(line)


def test_named_tensors_are_captured_by_input_name() -> None:
    tensors = {"x": np.array([[1, 2], [3, 4]]), "mask": np.array([1, 0])}
    line = build_line(CaptureSpec(1.0), None, "r", 0.0, tensors, {"y": np.array([5, 6])}, columns)
    record = json.loads(line)
    assert record["rows"] == [{"x": [1, 2], "mask": 1}, {"x": [3, 4], "mask": 0}]
    assert record["predictions"] == [{"y": 5}, {"y": 6}]


def test_the_folder_rotates_and_stays_under_its_total(tmp_path: Path) -> None:
    line = "x" * 99  # 100 bytes with its newline
    sink = FolderSink(tmp_path, max_file_bytes=1000, max_total_bytes=3500)
    for i in range(100):
        sink.write([f"{i:04d}" + line[4:]])
    sink.close()
    files = sorted(tmp_path.glob("capture-*.jsonl"))
    sizes = [f.stat().st_size for f in files]
    assert all(size <= 1000 for size in sizes) and sum(sizes) <= 3500
    kept = [text for f in files for text in f.read_text().splitlines()]
    assert kept[-1].startswith("0099")  # the newest survive, the oldest went
    assert [int(t[:4]) for t in kept] == list(range(100 - len(kept), 100))
    assert re.fullmatch(r"capture-\d{8}T\d{12}Z-\d+-\d{6}\.jsonl", files[0].name)


def test_stdout_lines_carry_the_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    StdoutSink().write(['{"request_id":"r"}'])
    assert capsys.readouterr().out == f'{CAPTURE_STDOUT_PREFIX}{{"request_id":"r"}}\n'


def test_a_full_disk_stops_capture(tmp_path: Path) -> None:
    errors = METRICS.dropped.labels("write_error")
    before = errors._value.get()
    sink = FullDiskSink(tmp_path, 1 << 20, 1 << 30)
    capture = run_capture(CaptureSpec(sample=1.0), 0.0, sink=sink)
    assert capture.active is False
    assert METRICS.active._value.get() == 0
    assert errors._value.get() > before
    capture.observe("later", ROWS, ROWS[:, 0])  # stopped: nothing queued
    assert capture._queue.empty()


def test_a_full_queue_drops_and_counts() -> None:
    full = METRICS.dropped.labels("queue_full")
    before = full._value.get()
    capture = Capture(CaptureSpec(sample=1.0), columns, sink=ListSink(), queue_size=1)
    capture.observe("r1", ROWS, ROWS[:, 0])  # no writer running: the queue stays full
    capture.observe("r2", ROWS, ROWS[:, 0])
    assert full._value.get() == before + 1


# --- a real server ------------------------------------------------------------------


def read_records(folder: Path) -> list[CapturedRecord]:
    lines = [line for f in folder.glob("capture-*.jsonl") for line in f.read_text().splitlines()]
    return [CapturedRecord.from_json(json.loads(line)) for line in lines if line]


def wait_for_records(folder: Path, count: int, server: Any) -> list[CapturedRecord]:
    """The folder's records once ``count`` are written (the writer runs on its own)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        server.assert_alive()
        records = read_records(folder)
        if len(records) >= count:
            return records
        time.sleep(0.05)
    pytest.fail(f"{count} records expected in {folder}, found {len(read_records(folder))}")


@pytest.fixture(scope="module")
def capture_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("capture")


@pytest.fixture(scope="module")
def capturing(
    start_server: ServerFactory, sklearn_model_path: Path, capture_folder: Path
) -> Iterator[Any]:
    settings = serving_settings("sklearn", sklearn_model_path, workers=2)
    env = CaptureSpec(sample=1.0, hash=("f0",)).to_env(str(capture_folder))
    server = start_server(settings, env)
    yield server
    server.stop()


PREDICT_BODIES = [
    (routes.SAGEMAKER_INVOCATIONS, {"instances": ROWS.tolist()}),
    (routes.VERTEX_PREDICT, {"instances": ROWS.tolist()}),
    (routes.AZURE_SCORING, {"instances": ROWS.tolist()}),
    ("/v2/models/iris/infer", oip_request(ROWS)),  # two outputs: two predicts, one record
]


def test_every_route_echoes_or_makes_a_request_id_and_is_captured_once(
    capturing: Any, capture_folder: Path
) -> None:
    client: httpx.Client = capturing.client
    given = []
    for path, body in PREDICT_BODIES:
        answer = client.post(path, json=body, headers={"X-Request-Id": f"id-{path}"})
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-request-id"] == f"id-{path}"
        given.append(f"id-{path}")
        made = client.post(path, json=body)
        assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
        given.append(made.headers["x-request-id"])
    records = {r.request_id: r for r in wait_for_records(capture_folder, len(given), capturing)}
    assert set(given) <= set(records)
    record = records[f"id-{routes.SAGEMAKER_INVOCATIONS}"]
    assert record.rows is not None and record.rows[0]["f1"] == ROWS[0, 1]
    assert record.rows[0]["f0"] == hashed(ROWS[0, 0].item())
    assert record.predictions is not None and len(record.predictions) == len(ROWS)


def test_concurrent_requests_are_each_captured_once(capturing: Any, capture_folder: Path) -> None:
    before = {r.request_id for r in read_records(capture_folder)}
    ids = [f"load-{i}" for i in range(200)]

    def send(request_id: str) -> int:
        with httpx.Client(base_url=capturing.url, timeout=30) as client:
            body = {"instances": ROWS[:1].tolist()}
            return client.post(
                "/invocations", json=body, headers={"X-Request-Id": request_id}
            ).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(send, ids)) == {200}
    records = wait_for_records(capture_folder, len(before) + len(ids), capturing)
    captured = [r.request_id for r in records if r.request_id.startswith("load-")]
    assert sorted(captured) == sorted(ids)
    pids = {re.split(r"-", f.name)[2] for f in capture_folder.glob("capture-*.jsonl")}
    assert pids  # each worker writes its own files


def test_an_unwritable_destination_stops_capture_and_serving_goes_on(
    start_server: ServerFactory, sklearn_model_path: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = CaptureSpec(sample=1.0).to_env(str(blocker / "capture"))  # under a file: ENOTDIR
    server = start_server(serving_settings("sklearn", sklearn_model_path), env)
    for _ in range(3):
        answer = server.client.post("/invocations", json={"instances": ROWS.tolist()})
        assert answer.status_code == 200
    deadline = time.monotonic() + 30
    while scrape(server.client).get(("deployer_capture_active", ())) != 0:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    samples = scrape(server.client)
    assert samples[("deployer_capture_dropped_total", (("reason", "write_error"),))] >= 1
    assert server.client.post("/invocations", json={"instances": ROWS.tolist()}).status_code == 200
    assert server.stderr().count("capture stopped") == 1
    server.stop()


def test_a_bad_capture_variable_stops_the_server_with_a_message(
    start_server: ServerFactory, sklearn_model_path: Path
) -> None:
    settings = serving_settings("sklearn", sklearn_model_path)
    server = start_server(settings, {"DEPLOYER_CAPTURE": '{"sample": 3}'}, wait_path=None)
    assert server.process.wait(60) == 2
    assert "DEPLOYER_CAPTURE" in server.stderr() and "Traceback" not in server.stderr()
