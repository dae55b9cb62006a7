"""A part's pyarrow blocks are written as one table, in order, whatever their types."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from deployer.serving.batch_parts import Parts


def test_a_parts_blocks_in_order_as_one_csv(tmp_path: Path) -> None:
    parts = Parts(str(tmp_path / "out.csv"), "csv")
    blocks = [
        pa.table({"id": ["a", "b"], "prediction": [1, 2]}),
        pa.table({"id": ["c"], "prediction": [3]}),
        [["d", 4]],
        b"e,5\n",
        pa.table({"id": ["f"], "prediction": [0.5]}),  # another type: written alone
        pa.table({"id": ["g"], "prediction": [6]}),
    ]
    parts.write(0, ["id", "prediction"], blocks, {"rows": 7, "scored": 7, "failed": 0})
    parts.assemble(["id", "prediction"])
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines == ["id,prediction", "a,1", "b,2", "c,3", "d,4", "e,5", "f,0.5", "g,6"]
