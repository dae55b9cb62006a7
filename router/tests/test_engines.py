"""The rendered HAProxy and NGINX configurations, run for real (Debian's haproxy and
nginx-light) in front of real model servers, through the failover scenario the built-in
router passes: kill a tier-0 backend under load, then the whole tier, then bring it back.

Envoy cannot be installed here; its rendering is checked structurally in test_render.py.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from router_support import Load, failures, manifest, model_entry, wait_until
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
        if kind == "haproxy":
            if not Path(HAPROXY).exists():
                pytest.skip("haproxy is not installed (apt-get install haproxy)")
            path = tmp_path / "haproxy.cfg"
            path.write_text(render(config, "haproxy", bind=address).text)
            subprocess.run([HAPROXY, "-c", "-f", str(path)], check=True, capture_output=True)
            command = [HAPROXY, "-db", "-f", str(path)]
        else:
            if not Path(NGINX).exists():
                pytest.skip("nginx is not installed (apt-get install nginx-light)")
            path = tmp_path / "nginx.conf"
            temp = tmp_path / "nginx-temp"
            temp.mkdir()
            text = render(
                config,
                "nginx",
                listen=address,
                pid=str(tmp_path / "nginx.pid"),
                temp=str(temp),
                workers="1",
            ).text
            path.write_text(text)
            base = [NGINX, "-p", str(tmp_path), "-e", "stderr", "-c", str(path)]
            subprocess.run([*base, "-t"], check=True, capture_output=True)
            command = [*base, "-g", "daemon off;"]
        with (tmp_path / f"{kind}.log").open("wb") as log:  # the child has its own copy
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
