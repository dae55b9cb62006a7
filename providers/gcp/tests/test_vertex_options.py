"""Options, names, traffic arithmetic and plugin discovery: no server needed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from deployer.errors import ConfigError
from deployer.providers import ProjectInfo, Strategy, Target, provider_class
from deployer_gcp import names, traffic
from deployer_gcp.options import VertexOptions
from deployer_gcp.provider import VertexProvider


def make(**options: object) -> VertexProvider:
    base = {"provider": "vertex", "project": "demo-project", "region": "europe-west4"}
    return VertexProvider(Target("gcp", "vertex", {**base, **options}), ProjectInfo("iris"))


def problems(**options: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        VertexProvider(Target("gcp", "vertex", {"provider": "vertex", **options}), ProjectInfo("x"))
    return caught.value.problems


def test_the_entry_point_finds_the_provider() -> None:
    assert provider_class("vertex") is VertexProvider


def test_defaults() -> None:
    provider = make()
    options = provider.options
    assert options.machine_type == "n1-standard-2"
    assert options.replicas == (1, 1)
    assert options.registry_path() == "europe-west4-docker.pkg.dev/demo-project/deployer"
    assert make(repository="models", max_replicas=4).options.replicas == (1, 4)
    assert make(registry="eu.gcr.example/x/").options.registry_path() == "eu.gcr.example/x"


def test_project_and_region_are_required() -> None:
    assert problems() == [
        "targets.gcp.project: required field is missing",
        "targets.gcp.region: required field is missing",
    ]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"machine": "n1"}, "targets.gcp.machine: unknown field"),
        ({"region": "Europe West"}, "targets.gcp.region: Value error, 'Europe West' is not"),
        ({"project": "Demo_Project"}, "targets.gcp.project: Value error, 'Demo_Project' is not"),
        ({"min_replicas": 0}, "targets.gcp.min_replicas: Input should be greater than"),
        ({"min_replicas": 3, "max_replicas": 2}, "targets.gcp.max_replicas: Value error, must"),
        ({"env": {"AIP_HTTP_PORT": "1"}}, "targets.gcp.env: Value error, AIP_HTTP_PORT: Vertex"),
        ({"registry": "https://x.pkg.dev"}, "targets.gcp.registry: Value error, expected HOST"),
        ({"repository": "My Repo"}, "targets.gcp.repository: Value error, expected lower-case"),
        ({"poll_interval": 0}, "targets.gcp.poll_interval: Input should be greater than 0"),
    ],
)
def test_option_errors_name_the_field(options: dict[str, object], expected: str) -> None:
    base = {"project": "demo-project", "region": "us-central1"}
    found = problems(**{**base, **options})
    assert len(found) == 1 and found[0].startswith(expected), found


def test_options_model_forbids_extras() -> None:
    assert VertexOptions.model_config["extra"] == "forbid"


def test_label_values_follow_googles_rules() -> None:
    assert names.label_value("iris-test") == "iris-test"
    assert names.label_value("0cf457e24a47-4f93e5df") == "0cf457e24a47-4f93e5df"
    odd = names.label_value("Prod.EU/1")
    assert odd.startswith("prod-eu-1-") and len(odd) == len("prod-eu-1-") + 8
    long = names.label_value("x" * 100)
    assert len(long) <= 63 and long != names.label_value("x" * 101)
    for value in (odd, long):
        assert all(c.islower() or c.isdigit() or c in "-_" for c in value)
    assert names.owner_labels("iris", "Prod") == {
        "deployer-project": "iris",
        "deployer-target": names.label_value("Prod"),
    }
    assert names.label_filter({"b-x": "2", "a": "1"}) == 'labels.a="1" AND labels.b-x="2"'
    assert len(names.model_display_name("p" * 40, "t" * 60, "v" * 40)) == 128
    assert names.image_repository("r.example/p/repo", "Iris Model") == "r.example/p/repo/iris-model"


def test_each_strategy_maps_to_traffic_steps() -> None:
    assert traffic.steps(Strategy.parse("all-at-once")) == [100]
    assert traffic.steps(Strategy.parse("canary:10")) == [10, 100]
    assert traffic.steps(Strategy.parse("linear:25")) == [25, 50, 75, 100]
    assert traffic.steps(Strategy.parse("linear:30")) == [30, 60, 90, 100]
    assert traffic.split("0", 10, "7", ["7", "8"]) == {"0": 10, "7": 90, "8": 0}
    assert traffic.split("0", 100, None, ["7"]) == {"7": 0, "0": 100}


def test_importing_the_provider_does_not_import_the_sdk() -> None:
    code = (
        "import sys, deployer_gcp.provider, deployer_gcp.options;"
        "sdk = ('google.cloud.aiplatform', 'grpc', 'google.api_core');"
        "bad = [m for m in sys.modules if m.startswith(sdk)];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
