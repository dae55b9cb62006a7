"""``deployer evaluate --to T --labels``: captured predictions joined with late labels by
request id, metrics per window and overall on a case computed by hand."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from monitoring_support import START, CapturingCloud, cli, json_of

from deployer.providers.monitoring import CapturedRecord, format_time

FEEDBACK = (
    "request_id,label,row\n"
    "r1,a,\nr2,b,\nr3,b,0\nr3,b,1\n"
    "r3,a,\n"  # no row for a request of two predictions: unmatched_rows
    "r4,a,\nr4,b,\n"  # labelled twice: the last (b) kept
    "r5,a,\nghost,a,\n"  # ghost was never captured: unmatched_ids
)


def captured() -> list[CapturedRecord]:
    def at(minutes: int, request: str, predictions: list[object]) -> CapturedRecord:
        return CapturedRecord(request, START + timedelta(minutes=minutes), None, predictions)

    return [
        at(5, "r1", ["a"]),
        at(10, "r2", ["a"]),
        at(20, "r3", [["b"], "b"]),
        at(90, "r4", ["b"]),
        at(100, "r5", ["a"]),
        at(110, "r6", ["a"]),  # no label: unlabelled
    ]


def test_windows_and_overall_by_hand(project: Path) -> None:
    CapturingCloud.records = captured()
    (project / "feedback.csv").write_text(FEEDBACK)
    run = cli(
        "evaluate", "-f", str(project / "deployer.yaml"), "--to", "live",
        "--labels", str(project / "feedback.csv"), "--window", "1h", "-o", "json",
    )  # fmt: skip
    assert run.exit_code == 0, run.stdout + run.stderr
    found = json_of(run)
    assert (found["matched"], found["unmatched_ids"], found["unmatched_rows"]) == (6, 1, 1)
    assert (found["duplicates"], found["unlabelled"]) == (1, 1)
    first, second = found["windows"]
    hour = timedelta(hours=1)
    assert (first["start"], first["end"]) == (format_time(START), format_time(START + hour))
    # the first hour: truth a b b b, predicted a a b b. a: precision 1/2, recall 1/1, f1 2/3;
    # b: precision 2/2, recall 2/3, f1 0.8; macro: 0.75, 0.8333, 0.7333
    assert first["rows"] == 4 and first["accuracy"] == pytest.approx(0.75)
    assert first["precision_macro"] == pytest.approx(0.75)
    assert first["recall_macro"] == pytest.approx((1 + 2 / 3) / 2)
    assert first["f1_macro"] == pytest.approx((2 / 3 + 0.8) / 2)
    # the second hour: truth b a, predicted b a: all 1
    assert second["rows"] == 2 and second["f1_macro"] == pytest.approx(1.0)
    # overall: truth a b b b b a, predicted a a b b b a. a: 2/3, 1, 0.8; b: 1, 3/4, 6/7
    overall = found["overall"]
    assert overall["precision_macro"] == pytest.approx((2 / 3 + 1) / 2)
    assert overall["recall_macro"] == pytest.approx((1 + 0.75) / 2)
    assert overall["f1_macro"] == pytest.approx((0.8 + 6 / 7) / 2)
    text = cli(
        "evaluate", "-f", str(project / "deployer.yaml"), "--to", "live",
        "--labels", str(project / "feedback.csv"),
    )  # fmt: skip
    assert text.exit_code == 0 and "overall" in text.stdout
    assert "1 labels whose request id was never captured" in text.stderr


def test_labels_bad_input(project: Path) -> None:
    (project / "feedback.csv").write_text("id,truth\nr1,a\n")
    base = ("evaluate", "-f", str(project / "deployer.yaml"))
    run = cli(*base, "--to", "live", "--labels", str(project / "feedback.csv"))
    assert run.exit_code == 2 and "no column 'request_id' (--id-column)" in run.stderr
    run = cli(*base, "--labels", str(project / "feedback.csv"))
    assert run.exit_code == 2 and "--labels needs --to" in run.stderr
    run = cli(*base, "--to", "live", "--labels", str(project / "feedback.csv"), "--window", "1y")
    assert run.exit_code == 2 and "--window '1y'" in run.stderr
    run = cli(*base, "--to", "plain", "--labels", str(project / "feedback.csv"))
    assert run.exit_code == 2 and "'plain'" in run.stderr
    run = cli(*base)
    assert run.exit_code == 2 and "--data and --label" in run.stderr
