"""The hash-chained audit log: appends, ``verify`` catching edits, deletions and
reorders by line, concurrent appends from two processes, and ``deployer audit verify``."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

from release_support import cli

from deployer.audit import AuditLog
from deployer.audit.chain import GENESIS, record_hash


def filled(folder: Path, count: int = 4) -> AuditLog:
    log = AuditLog(folder)
    for n in range(count):
        log.append({"action": "push", "outcome": "succeeded", "version": f"v{n}"})
    return log


def lines_of(log: AuditLog) -> list[str]:
    return log.path.read_text().splitlines(keepends=True)


def test_records_are_chained_and_verify_counts_them(tmp_path: Path) -> None:
    log = filled(tmp_path)
    records = log.records()
    assert [r["seq"] for r in records] == [1, 2, 3, 4]
    assert records[0]["prev_hash"] == GENESIS
    for before, after in itertools.pairwise(records):
        assert after["prev_hash"] == before["hash"]
    assert all(record_hash(r) == r["hash"] for r in records)
    found = log.verify()
    assert found.ok and found.count == 4
    assert log.path == tmp_path / ".deployer" / "audit.jsonl"


def test_an_edited_record_is_named_by_its_line(tmp_path: Path) -> None:
    log = filled(tmp_path)
    lines = lines_of(log)
    lines[2] = lines[2].replace('"v2"', '"v9"')
    log.path.write_text("".join(lines))
    found = log.verify()
    assert (found.ok, found.bad_line, found.count) == (False, 3, 2)
    assert "edited" in (found.problem or "")


def test_an_edit_that_recomputes_the_hash_breaks_the_next_line(tmp_path: Path) -> None:
    log = filled(tmp_path)
    lines = lines_of(log)
    record = json.loads(lines[1])
    record["version"] = "forged"
    record["hash"] = record_hash(record)
    lines[1] = json.dumps(record) + "\n"
    log.path.write_text("".join(lines))
    found = log.verify()
    assert (found.ok, found.bad_line) == (False, 3)
    assert "prev_hash" in (found.problem or "")


def test_a_deleted_record_is_named_by_the_line_after_it(tmp_path: Path) -> None:
    log = filled(tmp_path)
    lines = lines_of(log)
    del lines[1]
    log.path.write_text("".join(lines))
    found = log.verify()
    assert (found.ok, found.bad_line, found.count) == (False, 2, 1)
    assert "deleted" in (found.problem or "")


def test_reordered_records_are_caught(tmp_path: Path) -> None:
    log = filled(tmp_path)
    lines = lines_of(log)
    lines[1], lines[2] = lines[2], lines[1]
    log.path.write_text("".join(lines))
    found = log.verify()
    assert (found.ok, found.bad_line) == (False, 2)
    assert "reordered" in (found.problem or "")


def test_a_torn_last_line_is_named_and_later_appends_go_on(tmp_path: Path) -> None:
    log = filled(tmp_path, 2)
    with log.path.open("a") as f:
        f.write('{"action": "push", "seq": 3')  # a write cut short
    log.append({"action": "push", "outcome": "succeeded"})
    found = log.verify()
    assert (found.ok, found.bad_line, found.count) == (False, 3, 2)
    assert log.records()[-1]["action"] == "push"  # the new record is on a line of its own


APPENDER = """
import sys
from pathlib import Path
from deployer.audit import AuditLog
log = AuditLog(Path(sys.argv[1]))
for n in range(int(sys.argv[2])):
    log.append({"action": "push", "outcome": "succeeded", "writer": sys.argv[3], "n": n})
"""


def test_two_processes_appending_at_once_keep_the_chain_valid(tmp_path: Path) -> None:
    count = 150
    writers = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(tmp_path), str(count), name])
        for name in ("one", "two")
    ]
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    log = AuditLog(tmp_path)
    found = log.verify()
    assert found.ok, found
    assert found.count == 2 * count
    by_writer = [r["writer"] for r in log.records()]
    assert by_writer.count("one") == by_writer.count("two") == count


def test_cli_verify_exit_codes_and_json(tmp_path: Path) -> None:
    project = tmp_path / "deployer.yaml"  # verify reads only the log next to it
    log = filled(tmp_path, 3)
    ok = cli("audit", "verify", "-f", str(project))
    assert ok.exit_code == 0, ok.stderr
    assert "3 record(s)" in ok.stderr
    data = json.loads(cli("audit", "verify", "-f", str(project), "-o", "json").stdout)
    assert data["ok"] is True and data["records"] == 3
    lines = lines_of(log)
    log.path.write_text(lines[0] + lines[2])
    bad = cli("audit", "verify", "-f", str(project))
    assert bad.exit_code == 1
    assert "line 2" in bad.stderr
    broken = cli("audit", "verify", "-f", str(project), "-o", "json")
    assert broken.exit_code == 1
    assert json.loads(broken.stdout)["bad_line"] == 2


def test_no_log_verifies_as_empty(tmp_path: Path) -> None:
    found = AuditLog(tmp_path).verify()
    assert found.ok and found.count == 0
