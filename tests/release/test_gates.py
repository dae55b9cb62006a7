"""Release gates: parsing (and deployer.yaml errors at the gate's line), each operator,
``live``/``previous`` baselines, and unknown or stale metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.config import load_config
from deployer.errors import ConfigError, DeployerError
from deployer.gates import Baseline, Gate, evaluate, parse_gate
from deployer.lockfile import Lock
from deployer.release_checks import baselines, model_metrics


def test_parse_numbers_live_and_previous() -> None:
    assert parse_gate("f1_macro >= 0.90") == Gate(
        "f1_macro >= 0.90", "f1_macro", ">=", "number", 0.9
    )
    assert parse_gate("roc_auc >= live - 0.01").number == pytest.approx(-0.01)
    assert parse_gate("roc_auc>=live+1e-2").number == pytest.approx(0.01)
    previous = parse_gate("log_loss <= previous")
    assert (previous.reference, previous.number) == ("previous", 0.0)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("f2 >= 0.9", "unknown metric 'f2'"),
        ("f1_macro => 0.9", "unknown operator '=>'"),
        ("f1_macro >= lve", "cannot read the value 'lve'"),
        ("f1_macro", "expected METRIC OP VALUE"),
    ],
)
def test_parse_errors_name_the_gate_and_the_problem(text: str, named: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_gate(text)
    assert named in str(caught.value)
    assert repr(text) in str(caught.value)


def test_deployer_yaml_names_the_line_and_the_gate(tmp_path: Path) -> None:
    file = tmp_path / "deployer.yaml"
    file.write_text(
        "name: iris\nmodel: {path: m.joblib}\nrelease:\n  gates:\n"
        '    - "f1_macro >= 0.9"\n    - "f2 >= live"\n    - "roc_auc =< 1"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    problems = caught.value.problems
    assert len(problems) == 2
    assert problems[0].startswith("line 6: release.gates.1: gate 'f2 >= live': unknown metric")
    assert problems[1].startswith("line 7: release.gates.2: gate 'roc_auc =< 1': unknown operator")


def test_valid_gates_load(tmp_path: Path) -> None:
    file = tmp_path / "deployer.yaml"
    file.write_text('name: iris\nmodel: {path: m.joblib}\nrelease: {gates: ["r2 > 0.5"]}\n')
    assert load_config(file).release.gates == ("r2 > 0.5",)


@pytest.mark.parametrize(
    ("op", "value", "passed"),
    [
        (">=", 0.9, True),
        (">=", 0.89, False),
        (">", 0.9, False),
        (">", 0.91, True),
        ("<=", 0.9, True),
        ("<=", 0.91, False),
        ("<", 0.9, False),
        ("<", 0.89, True),
        ("==", 0.9, True),
        ("==", 0.91, False),
        ("!=", 0.91, True),
        ("!=", 0.9, False),
    ],
)
def test_each_operator(op: str, value: float, passed: bool) -> None:
    [result] = evaluate([parse_gate(f"accuracy {op} 0.9")], {"accuracy": value}, [])
    assert (result.passed, result.value, result.threshold, result.target) == (
        passed,
        value,
        0.9,
        None,
    )


def test_live_and_previous_per_target() -> None:
    gates = [parse_gate("roc_auc >= live - 0.01"), parse_gate("log_loss <= previous")]
    baselines = [
        Baseline("a", "v2", {"roc_auc": 0.95, "log_loss": 0.2}, "v1", {"log_loss": 0.3}),
        Baseline("b", "v2", {"roc_auc": 0.90, "log_loss": 0.2}, "v1", {"log_loss": 0.1}),
    ]
    results = evaluate(gates, {"roc_auc": 0.93, "log_loss": 0.25}, baselines)
    verdicts = {(r.gate.split()[0], r.target): (r.passed, r.threshold) for r in results}
    assert verdicts[("roc_auc", "a")] == (False, pytest.approx(0.94))
    assert verdicts[("roc_auc", "b")] == (True, pytest.approx(0.89))
    assert verdicts[("log_loss", "a")] == (True, 0.3)
    assert verdicts[("log_loss", "b")] == (False, 0.1)


def test_nothing_live_passes_with_a_note_and_an_unrecorded_live_version_fails() -> None:
    gate = parse_gate("f1_macro >= live")
    first, unknown = evaluate([gate], {"f1_macro": 0.9}, [Baseline("a"), Baseline("b", "v7", None)])
    assert first.passed and "no live version on a" in (first.note or "")
    assert not unknown.passed
    assert "live version v7 on b has no recorded push" in (unknown.note or "")


def test_no_previous_version_passes_with_a_note() -> None:
    [result] = evaluate(
        [parse_gate("log_loss <= previous")], {"log_loss": 0.2}, [Baseline("a", "v1", {})]
    )
    assert result.passed and "no previous version on a" in (result.note or "")


def test_a_metric_the_evaluation_did_not_record_fails_naming_it() -> None:
    [result] = evaluate([parse_gate("roc_auc >= 0.8")], {"accuracy": 0.9}, [])
    assert not result.passed
    assert "roc_auc was not recorded" in (result.note or "")
    assert "deployer evaluate" in (result.note or "")


def lock(evaluation: dict[str, object] | None) -> Lock:
    return Lock("m", "s", "sklearn", {}, evaluation)


def test_metrics_only_while_the_evaluation_is_of_this_model() -> None:
    evaluation = {"model_sha256": "abc", "metrics": {"f1_macro": 0.9}}
    assert model_metrics(lock(evaluation), "abc") == ({"f1_macro": 0.9}, None)
    stale, why = model_metrics(lock(evaluation), "def")
    assert stale is None and "stale" in (why or "")
    missing, why = model_metrics(lock(None), "abc")
    assert missing is None and "no evaluation" in (why or "")
    [result] = evaluate([parse_gate("f1_macro >= 0.5")], stale, [], missing=why)
    assert not result.passed and "deployer evaluate" in (result.note or "")


def test_a_target_whose_status_fails_fails_a_live_gate() -> None:
    # not knowing what is live is not "nothing is live": the gate must not pass
    [result] = evaluate(
        [parse_gate("f1_macro >= live")], {"f1_macro": 0.9}, [Baseline("a", error="denied")]
    )
    assert not result.passed
    assert result.note == "cannot tell what a serves: denied"


class Unreachable:
    def status(self) -> None:
        raise DeployerError("403 from the control plane")


def test_baselines_carry_a_failed_status(tmp_path: Path) -> None:
    [found] = baselines({"a": Unreachable()}, tmp_path)  # type: ignore[dict-item]
    assert found == Baseline("a", error="403 from the control plane")
