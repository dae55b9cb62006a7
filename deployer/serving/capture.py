"""The image's own prediction capture (Kubernetes and local targets).

``DEPLOYER_CAPTURE`` (deployer.providers.monitoring.CaptureSpec.to_env) turns it on. A
sampled request hands its rows and predictions to a bounded queue (never blocking: when
full the record is dropped and counted); one writer thread per worker process builds
the JSON lines (deployer.serving.capture_record) and writes them to the sink
(deployer.serving.capture_sinks). A write error (a full disk, a read-only mount) stops
capture with one log line; serving goes on.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from deployer.providers.monitoring import CaptureSpec
from deployer.serving.capture_record import Columns, build_line
from deployer.serving.capture_sinks import Sink, sink_for

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge

log = logging.getLogger("deployer.serving")

QUEUE_SIZE = 10_000
YIELD_EVERY = 16  # records the writer encodes before it lets the serving thread run
_STOP = object()


class _Metrics:
    """The capture's metrics, made on first use: in a worker, once the launcher has chosen
    PROMETHEUS_MULTIPROC_DIR (an unlabelled metric opens its file there when it is made,
    so one made at import would open a directory the launcher may refuse)."""

    @functools.cached_property
    def records(self) -> Counter:
        from prometheus_client import Counter

        return Counter("deployer_capture_records", "Requests captured and written.")

    @functools.cached_property
    def dropped(self) -> Counter:
        from prometheus_client import Counter

        return Counter(
            "deployer_capture_dropped", "Sampled requests not captured, by reason.", ("reason",)
        )

    @functools.cached_property
    def active(self) -> Gauge:
        from prometheus_client import Gauge

        return Gauge(
            "deployer_capture_active",
            "1 while capture writes; 0 once stopped.",
            multiprocess_mode="min",
        )


METRICS = _Metrics()


def spec_from_environment(environ: Mapping[str, str] | None = None) -> CaptureSpec | None:
    """The capture the environment asks for (None: none); ValueError names DEPLOYER_CAPTURE."""
    return CaptureSpec.from_env(os.environ if environ is None else environ)


class Capture:
    """Samples requests and writes them on a thread of its own."""

    def __init__(
        self,
        spec: CaptureSpec,
        columns: Columns,
        version: str | None = None,
        *,
        sink: Sink | None = None,
        rand: Callable[[], float] = random.random,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.spec = spec
        self.columns = columns
        self.version = version
        self.sink = sink or sink_for(spec.destination, spec.max_file_mb, spec.max_total_mb)
        self.rand = rand
        self.active = True
        self._queue: queue.Queue[Any] = queue.Queue(queue_size)
        self._queue_full = METRICS.dropped.labels("queue_full")
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread."""
        METRICS.active.set(1)
        self._thread = threading.Thread(target=self._write_loop, name="capture", daemon=True)
        self._thread.start()

    def observe(self, request_id: str, rows: Any, result: Any) -> None:
        """Queue the request when sampled: O(1), never blocks."""
        if not self.active or self.rand() >= self.spec.sample:
            return
        try:
            self._queue.put_nowait((request_id, time.time(), rows, result))
        except queue.Full:
            self._queue_full.inc()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the thread and close the sink."""
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(timeout)
        self._thread = None

    def _write_loop(self) -> None:
        while True:
            items = [self._queue.get()]
            while len(items) < 512:  # write what is waiting in one go: one flush
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in items)
            records = [item for item in items if item is not _STOP]
            if records and self.active:
                self._write(records)
            if stop:
                self._close_sink()
                return

    def _write(self, records: list[tuple[str, float, Any, Any]]) -> None:
        try:
            lines = []
            for index, (rid, when, rows, result) in enumerate(records, 1):
                lines.append(
                    build_line(self.spec, self.version, rid, when, rows, result, self.columns)
                )
                if index % YIELD_EVERY == 0:
                    time.sleep(0)  # let the event loop have the GIL: requests never wait long
        except Exception:
            log.exception("capture: cannot encode %d record(s); dropped", len(records))
            METRICS.dropped.labels("encode_error").inc(len(records))
            return
        try:
            self.sink.write(lines)
        except OSError as exc:
            self.active = False
            METRICS.active.set(0)
            METRICS.dropped.labels("write_error").inc(len(records))
            log.error(
                "capture stopped: cannot write to %s (%s); serving goes on", self._where(), exc
            )
            self._close_sink()
            return
        METRICS.records.inc(len(records))

    def _close_sink(self) -> None:
        with contextlib.suppress(OSError):
            self.sink.close()

    def _where(self) -> str:
        return self.spec.destination or "stdout"
