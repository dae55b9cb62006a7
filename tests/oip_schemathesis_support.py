"""schemathesis against the published OIP v2 REST spec, for the server and for the image:
the spec from PyPI, adapted in code, one bounded derandomized run, its reports read.

Where the spec comes from, how it differs from kserve's and what ``adapt`` changes in
it, and why: the docstring of tests/platforms/test_oip_schemathesis.py.
"""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clients_support import run_client, wheel_member

SPEC_WHEEL = "mlserver==1.7.1"
SPEC_MEMBER = "mlserver/rest/openapi/dataplane.json"
SPEC_SHA256 = "7e7e5c1acc538233bb125ee3dd50cb46063e191d83d82ce1a556e2b13cc1d97b"
NOT_OIP = ("infer_stream", "generate", "generate_stream")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
# Bounded and derandomized: the same cases on every run.
MAX_EXAMPLES = 60
# kserve's tensor_data (open_inference_rest.yaml), under MLServer's name.
TENSOR_DATA = {
    "title": "TensorData",
    "type": "array",
    "items": {
        "anyOf": [
            {"$ref": "#/components/schemas/TensorData"},
            {"type": "number"},
            {"type": "string"},
            {"type": "boolean"},
        ]
    },
}
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]]


def _tensor(datatype: str, data: list[Any]) -> dict[str, Any]:
    return {"name": "input-0", "shape": [len(ROWS), 4], "datatype": datatype, "data": data}


FLAT = [v for row in ROWS for v in row]
INFER_EXAMPLES = {
    "every-output": {"inputs": [_tensor("FP32", FLAT)]},
    "named-output": {
        "id": "st-1",
        "inputs": [_tensor("FP64", ROWS)],
        "outputs": [{"name": "predict_proba"}],
    },
    "integers": {"inputs": [_tensor("INT64", [round(v) for v in FLAT])], "parameters": {}},
}


def published_spec() -> dict[str, Any]:
    """MLServer's OpenAPI document of the OIP v2 data plane, as published."""
    path = wheel_member(SPEC_WHEEL, SPEC_MEMBER, SPEC_SHA256)
    spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return spec


def adapt(spec: dict[str, Any], model: str, version: str) -> dict[str, Any]:
    """The published spec, changed as tests/platforms/test_oip_schemathesis.py lists (1-6)."""
    spec = copy.deepcopy(spec)
    paths: dict[str, Any] = spec["paths"]
    for path in [p for p in paths if p.rsplit("/", 1)[-1] in NOT_OIP]:  # 1
        del paths[path]
    paths["/v2/"] = copy.deepcopy(paths["/v2"])  # 2
    not_found = paths["/v2/models/{model_name}"]["get"]["responses"]["404"]
    for path, item in paths.items():
        for parameter in item.get("parameters", []):  # 3
            value = {"model_name": model, "model_version": version}[parameter["name"]]
            parameter["schema"] = {"type": "string", "enum": [value]}
        if path.startswith("/v2/models/") and path.endswith("/ready"):  # 4
            item["get"]["responses"]["404"] = copy.deepcopy(not_found)
        if path.endswith("/infer"):  # 6
            content = item["post"]["requestBody"]["content"]["application/json"]
            content["examples"] = {k: {"value": v} for k, v in INFER_EXAMPLES.items()}
    spec["components"]["schemas"]["TensorData"] = TENSOR_DATA  # 5
    return spec


@dataclass
class Outcome:
    """What one schemathesis run reported."""

    driver: dict[str, Any]
    problems: list[str]  # one line per failing check or error: operation, check, example
    report: dict[str, Any]  # the JSON run report


def junit_problems(path: Path) -> list[str]:
    """Each failing test case or error in schemathesis's JUnit XML: the operation, the
    checks that failed and the request that made them fail (its curl line)."""
    problems = []
    for case in ET.parse(path).getroot().iter("testcase"):
        operation = case.get("name", "?")
        for failure in case.iter("failure"):
            text = failure.text or ""
            for found in re.split(r"^\d+\. Test Case ID: ", text, flags=re.MULTILINE)[1:]:
                lines = [line.strip() for line in found.splitlines()]
                checks = [line[2:] for line in lines if line.startswith("- ST")]
                example = next((line for line in lines if line.startswith("curl ")), "?")
                problems.append(f"{operation}: {'; '.join(checks)}; example: {example}")
        for error in case.iter("error"):
            problems.append(f"{operation}: error: {(error.text or '').strip()[:2000]}")
    return problems


def run_schemathesis(base_url: str, model: str, version: str, work: Path) -> Outcome:
    """schemathesis (its own venv) against ``base_url`` with the adapted spec."""
    spec = work / "oip-v2-openapi.json"
    spec.write_text(json.dumps(adapt(published_spec(), model, version), indent=1))
    junit, report = work / "junit.xml", work / "report.json"
    args = [
        "run",
        str(spec),
        f"--url={base_url}",
        f"--checks={','.join(CHECKS)}",
        "--phases=examples,coverage,fuzzing",  # stateful: no links, no state (one model)
        "--mode=all",
        f"--max-examples={MAX_EXAMPLES}",
        "--generation-deterministic",
        "--request-timeout=30",
        "--report=junit,json",
        f"--report-junit-path={junit}",
        f"--report-json-path={report}",
        "--no-color",
    ]
    # in ``work``: schemathesis keeps a crash cache in ./.schemathesis
    driver = run_client("schemathesis", "schemathesis_run.py", *args, timeout=600, cwd=work)
    assert junit.exists() and report.exists(), f"no report from schemathesis: {driver}"
    return Outcome(driver, junit_problems(junit), json.loads(report.read_text()))


def assert_clean(outcome: Outcome, operations: int) -> None:
    """No failing check and no error; every operation tested, and answered 2xx at least
    once (the infer operations for each valid example); no traffic off loopback."""
    assert outcome.driver["blocked"] == [], outcome.driver
    problems = "\n".join(outcome.problems)
    assert outcome.problems == [], f"schemathesis found {len(outcome.problems)}:\n{problems}"
    assert outcome.driver["exit_code"] == 0, outcome.driver
    counts = outcome.report["operations"]
    assert counts["selected"] == counts["tested"] == operations, counts
    assert outcome.report["warnings"]["missing_test_data"] == [], outcome.report["warnings"]
    rates: dict[str, dict[str, dict[str, int]]] = outcome.report["valid_rates"]
    assert len(rates) == operations, sorted(rates)
    for operation, phases in rates.items():
        assert sum(phase["accepted"] for phase in phases.values()) > 0, (operation, phases)
        if operation.endswith("/infer"):
            assert phases["examples"]["accepted"] >= len(INFER_EXAMPLES), (operation, phases)
