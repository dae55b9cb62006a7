"""release.live in deployer.yaml reaches every provider as the strategy's live rules;
without it a provider's bake just waits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from release_support import FakeCloud, cli, fake_project

from deployer.providers.live import LiveRules


def push(project: Path) -> Any:
    return cli("push", "--to", "a,b", "-f", str(project), "--strategy", "canary:10", "--bake", "30")


def test_release_live_becomes_the_strategys_live_rules(tmp_path: Path, fakecloud: Any) -> None:
    project = fake_project(tmp_path)
    with project.open("a") as yaml:
        yaml.write("release:\n  live: {max_error_rate_increase: 0.02, min_requests: 5}\n")
    run = push(project)
    assert run.exit_code == 0, run.stderr
    for target in ("a", "b"):
        (strategy,) = FakeCloud.clouds[target].strategies
        assert (strategy.kind, strategy.percent, strategy.bake_seconds) == ("canary", 10, 30)
        assert strategy.live == LiveRules(max_error_rate_increase=0.02, min_requests=5)


def test_without_release_live_there_are_no_live_rules(tmp_path: Path, fakecloud: Any) -> None:
    run = push(fake_project(tmp_path))
    assert run.exit_code == 0, run.stderr
    assert FakeCloud.clouds["a"].strategies[0].live is None


def test_a_bad_live_field_names_the_line_and_field(tmp_path: Path, fakecloud: Any) -> None:
    project = fake_project(tmp_path)
    with project.open("a") as yaml:
        yaml.write("release:\n  live:\n    min_requests: 0\n")
    run = cli("plan", "--to", "a", "-f", str(project))
    assert run.exit_code == 2
    assert "line 8: release.live.min_requests" in run.stderr
