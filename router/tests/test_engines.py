"""The rendered HAProxy and NGINX configurations, run for real (Debian's haproxy and
nginx-light) in front of real model servers, through the failover scenario the built-in
router passes: kill a tier-0 backend under load, then the whole tier, then bring it back;
and the per-backend limits push writes (a backend's own ``timeout`` and ``max_body_mb``).

Envoy cannot be installed here; its rendering is checked structurally in test_render.py.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from router_support import (
    BACKEND_HEADER,
    JSON_BODY,
    Load,
    failures,
    fake_backends,
    manifest,
    model_entry,
    wait_until,
)
from serving_support import free_port

from deployer.router.manifest import Manifest
from deployer_router.render import render

pytestmark = pytest.mark.slow
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def scenario_manifest(models: list[Any]) -> Manifest:
    data = manifest(
        backends=[
            model_entry(models[0], tier=0),
            model_entry(models[1], tier=0),
            model_entry(models[2], tier=1),
        ]
    )
    return Manifest.model_validate(data)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Any]:
    """``engine(kind, manifest) -> url``: run HAProxy or NGINX on a rendered config."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(kind: str, config: Manifest) -> str:
        port = free_port()
        address = f"127.0.0.1:{port}"
        folder = tmp_path / f"{kind}-{len(processes)}"  # several engines may run at once
        folder.mkdir()
        if kind == "haproxy":
            if not Path(HAPROXY).exists():
                pytest.skip("haproxy is not installed (apt-get install haproxy)")
            path = folder / "haproxy.cfg"
            path.write_text(render(config, "haproxy", bind=address).text)
            subprocess.run([HAPROXY, "-c", "-f", str(path)], check=True, capture_output=True)
            command = [HAPROXY, "-db", "-f", str(path)]
        else:
            if not Path(NGINX).exists():
                pytest.skip("nginx is not installed (apt-get install nginx-light)")
            path = folder / "nginx.conf"
            temp = folder / "nginx-temp"
            temp.mkdir()
            text = render(
                config,
                "nginx",
                listen=address,
                pid=str(folder / "nginx.pid"),
                temp=str(temp),
                workers="1",
            ).text
            path.write_text(text)
            base = [NGINX, "-p", str(folder), "-e", "stderr", "-c", str(path)]
            subprocess.run([*base, "-t"], check=True, capture_output=True)
            command = [*base, "-g", "daemon off;"]
        with (folder / f"{kind}.log").open("wb") as log:  # the child has its own copy
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        processes.append(process)
        url = f"http://{address}"
        wait_until(lambda: _live(url), timeout=20, message=f"{kind} listening")
        return url

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _live(url: str) -> bool:
    try:
        return httpx.get(url + "/-/router/live", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize("kind", ["haproxy", "nginx"])
def test_rendered_config_survives_the_failover_scenario(
    kind: str, models: list[Any], engine: Any
) -> None:
    """Phases are cut by marks (positions in the order requests were sent and ended)
    taken at events: a kill returned, the load reached a steady state. No clock offsets."""
    a, b = models[:2]
    url = engine(kind, scenario_manifest(models))
    with Load(url, concurrency=4) as load:
        # NGINX names the backend by address (``a, b`` when a request was retried)
        load.result.aliases = {m.url.removeprefix("http://"): m.name for m in models}
        load.wait_for(
            lambda r: min(r.backends()[n] for n in ("m0", "m1")) >= 30,
            message="both tier-0 backends serve",
        )
        # 1. one tier-0 backend dies: retries hide it, the other tier-0 backend takes it all
        a.kill()
        one_down = load.mark()
        m1_alone = load.wait_steady({"m1"}, message="m1 alone")
        # 2. the whole tier dies: the backup tier serves
        b.kill()
        tier_down = load.mark()
        load.wait_steady({"m2"}, message="backup")
        # 3. the tier comes back: traffic fails back to it
        a.start()
        b.start()
        a.wait()
        b.wait()
        back = load.mark()
        load.wait_for(
            lambda r: r.steady({"m0", "m1"}, 100) and r.backends(back)["m0"] >= 30,
            message="failback",
        )
    result = load.result
    # requests sent once a backend was dead (one in flight as it died may be cut off after
    # its headers went out: no proxy can hide that)
    phase_one = result.between(one_down, m1_alone, whole=True)
    assert not failures(phase_one), "a tier-0 death must not reach clients"
    assert "m2" not in result.backends(until=m1_alone), "the backup served while tier 0 was up"
    outage = result.between(tier_down, back, whole=True)
    if kind == "nginx":
        # NGINX moves on to the backup within the same request
        assert not failures(outage), failures(outage)[:5]
    # the backup carried the outage until the tier came back
    assert result.backends(tier_down, back)["m2"] >= 100


# --- per-backend limits -------------------------------------------------------------------

ROW = b"[5.1, 3.5, 1.4, 0.2]"
LARGE_BODY = b'{"instances": [' + b", ".join([ROW] * 100) + b"]}"  # over 1 KB, a valid batch
SMALL_LIMIT_MB = 1 / 1024  # 1 KB, as a platform's own limit (Vertex's 1.5 MB, scaled down)


def _chunks(body: bytes) -> Iterator[bytes]:
    """The body as a generator: httpx sends it chunked (no Content-Length)."""
    for start in range(0, len(body), 512):
        yield body[start : start + 512]


@pytest.mark.parametrize("kind", ["haproxy", "nginx"])
def test_a_backends_own_timeout_outlasts_the_global_one(kind: str, engine: Any) -> None:
    """Azure may take 180 s where the router's request timeout is 30 s (here: 1 s against
    an own 120 s). Two engines front the same slow backend, one rendered with the
    backend's own timeout and one without; the backend holds every request until the
    test releases it. The event that the global timeout has passed is the engine without
    the own timeout answering 504; the request through the other is still waiting then,
    and answers 200 once released."""
    with fake_backends({"name": "azure"}) as (slow,):
        slow.gate = threading.Event()
        try:
            entry = {"name": "azure", "url": slow.url}
            settings: dict[str, Any] = {
                "timeouts": {"request": 1, "total": 2},
                "retries": {"attempts": 1},
            }
            own = engine(
                kind,
                Manifest.model_validate(manifest(backends=[{**entry, "timeout": 120}], **settings)),
            )
            plain = engine(kind, Manifest.model_validate(manifest(backends=[entry], **settings)))
            with ThreadPoolExecutor(2) as pool:
                through_own = pool.submit(_post, own + "/invocations", JSON_BODY)
                through_plain = pool.submit(_post, plain + "/invocations", JSON_BODY)
                cut = through_plain.result(timeout=60)
                assert cut.status_code == 504, cut.text  # the global timeout, as rendered
                assert not through_own.done(), "the own timeout must outlast the global one"
                wait_until(lambda: slow.requests["/invocations"] >= 2, message="both arrive")
                slow.gate.set()
                answer = through_own.result(timeout=60)
        finally:
            slow.gate.set()
    assert answer.status_code == 200, answer.text
    assert answer.headers[BACKEND_HEADER] == "azure"


@pytest.mark.parametrize("kind", ["haproxy", "nginx"])
def test_a_body_over_a_backends_own_limit_never_reaches_it(
    kind: str, models: list[Any], engine: Any
) -> None:
    """A backend declaring 1 KB (a Vertex-like limit) beside a model server without a
    limit of its own: larger bodies, with a Content-Length or chunked, all go to the
    model server, small ones to both; alone, the small backend gets 413 (411 from
    HAProxy for a chunked body, which it cannot count) and the body never reaches it."""
    big = models[0]
    with fake_backends({"name": "vertex"}) as (small,):
        limited = {"name": "vertex", "url": small.url, "max_body_mb": SMALL_LIMIT_MB}
        both = engine(kind, Manifest.model_validate(manifest(backends=[limited, model_entry(big)])))
        with httpx.Client(timeout=30) as client:
            large = [client.post(both + "/invocations", content=LARGE_BODY) for _ in range(4)]
            large.append(client.post(both + "/invocations", content=_chunks(LARGE_BODY)))
            small_ones = [client.post(both + "/invocations", content=JSON_BODY) for _ in range(4)]
        assert [a.status_code for a in large] == [200] * 5, [a.text for a in large]
        assert {_answerer(a, big) for a in large} == {"m0"}
        assert {_answerer(a, big) for a in small_ones} == {"vertex", "m0"}
        alone = engine(kind, Manifest.model_validate(manifest(backends=[limited])))
        with httpx.Client(timeout=30) as client:
            refused = client.post(alone + "/invocations", content=LARGE_BODY)
            chunked = client.post(alone + "/invocations", content=_chunks(LARGE_BODY))
            fits = client.post(alone + "/invocations", content=JSON_BODY)
        assert refused.status_code == 413
        assert chunked.status_code == (411 if kind == "haproxy" else 413)
        assert fits.status_code == 200 and _answerer(fits, big) == "vertex"
        bodies = [r["body"] for r in small.seen if r["path"] != "/ping"]
    assert bodies and all(len(b) <= 1024 for b in bodies), [len(b) for b in bodies]


def _post(url: str, body: bytes) -> httpx.Response:
    return httpx.post(url, content=body, timeout=120)


def _answerer(answer: httpx.Response, model: Any) -> str:
    """The backend that answered (NGINX names it by address when a request was retried)."""
    name = answer.headers[BACKEND_HEADER]
    return str(model.name) if name == model.url.removeprefix("http://") else name
