"""schemathesis (its own venv) against a real server process with the iris model and the
published OIP v2 OpenAPI document (tests/oip_schemathesis_support.py runs it;
tests/platforms/test_oip_schemathesis_image.py does the same against the built image).

Checks: no 5xx, every status documented for its operation, every content type and body
as the spec declares them. The cases are bounded and derandomized (the same on every
run); the test reads schemathesis's JUnit XML and JSON reports and names each failing
check, operation and example request.

Where the spec comes from
-------------------------
The Open Inference Protocol's own OpenAPI document is
``specification/protocol/open_inference_rest.yaml`` in kserve/open-inference-protocol.
No PyPI or npm package ships it (not ``kserve``, ``tritonclient``, nor the
``aissemble-open-inference-protocol-*`` wheels), and the repository must not carry
others' files, so the test takes the OpenAPI document of the same protocol that Seldon
publishes inside MLServer's wheel on PyPI: ``mlserver/rest/openapi/dataplane.json`` of
``mlserver==1.7.1`` (``pip download --no-deps`` at test setup, cached under
.venv-clients/wheels, checked by SHA-256; see clients_support.wheel_member).

How it differs from kserve's open_inference_rest.yaml
-----------------------------------------------------
- Paths. kserve's document spells its templates ``/v2/models/${MODEL_NAME}/versions/
  ${MODEL_VERSION}[/ready|/infer]`` (a literal ``$`` before each OpenAPI template) and
  has only the versioned model routes; its prose (inference_rest.md) makes the version
  optional. MLServer's has both ``/v2/models/{model_name}[/versions/{model_version}]``
  forms of ready, metadata and infer. Server metadata is ``/v2/`` in kserve's, ``/v2``
  in MLServer's.
- Extra operations in MLServer's: ``infer_stream``, ``generate`` and ``generate_stream``
  (generate is kserve's separate generate_rest.yaml extension; streaming is MLServer's).
- Responses. Health routes: both declare a bare ``200`` with no body (the bodies are in
  the prose, and tests/serving/test_oip_spec.py holds them). Model metadata: kserve's
  declares only ``200``; MLServer's adds ``404`` with ``{"error"}``. Infer: kserve's
  declares ``200`` and ``400``; MLServer's adds ``404`` and ``500``, all ``{"error"}``.
  Model ready: only ``200`` in both.
- Schemas. kserve's ``datatype`` is any string; MLServer's is an enum of the thirteen
  datatypes. kserve's ``tensor_data`` is a (nested) array of numbers, strings and
  booleans; MLServer's ``TensorData`` is ``oneOf: [array, {type: bytes}]``, which is not
  valid JSON Schema (schemathesis refuses the operations that use it). MLServer's
  ``Parameters`` names ``content_type`` and ``headers``; model metadata has
  ``parameters`` where kserve's has a string map ``properties``.

What the test changes in it (``adapt``), and why
-----------------------------------------------
1. Keeps the protocol's core operations only: ``infer_stream``, ``generate`` and
   ``generate_stream`` are not in kserve's OIP v2 spec, and this server answers 404.
2. Adds kserve's ``/v2/`` spelling of server metadata beside MLServer's ``/v2``.
3. Fills the path parameters: ``model_name`` and ``model_version`` become enums of the
   one model the server serves, so positive cases reach it (negative cases still send
   other names, which must be a documented 404).
4. Documents ``404 {"error"}`` on the two model-ready operations, as MLServer documents
   it on metadata and infer: an unknown model name is a 404 on every model route (our
   deliberate choice; the spec names no status for it). No other status is added, so
   a 400 or 5xx there still fails.
5. Replaces MLServer's invalid ``TensorData`` with kserve's ``tensor_data``.
6. Gives the infer operations valid iris requests as examples (the spec's own
   ``x-examples`` are for another model), so the 200 answers are checked against the
   response schema on every run.
Both documents have ``servers: []``; the base URL is schemathesis's ``--url``.

The run
-------
Phases examples, coverage and fuzzing, positive and negative cases, at most 60 cases per
operation, derandomized (``--generation-deterministic``): about 850 requests, the same on
every run. No stateful phase: the spec has no links and the server no state to build.
``not_a_server_error`` fails any 5xx, although MLServer's document lists 500 for infer.
Neither document covers the binary tensor extension nor compressed bodies (held by
test_oip_spec.py and test_official_clients.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from oip_schemathesis_support import adapt, assert_clean, published_spec, run_schemathesis
from serving_support import ServerFactory, ServerProcess, serving_settings

# The first run builds schemathesis's venv and downloads the spec's wheel (cached after).
pytestmark = pytest.mark.timeout(1200)
OPERATIONS = 10  # the adapted spec's, listed below


@pytest.fixture(scope="module")
def oip_server(start_server: ServerFactory, sklearn_model_path: Path) -> ServerProcess:
    """The iris model with the image's default settings (no platform variables)."""
    return start_server(serving_settings("sklearn", sklearn_model_path))


def test_the_adapted_spec_keeps_the_protocols_operations() -> None:
    spec = adapt(published_spec(), "iris", "1")
    operations = sorted(
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    )
    assert operations == [
        "GET /v2",
        "GET /v2/",
        "GET /v2/health/live",
        "GET /v2/health/ready",
        "GET /v2/models/{model_name}",
        "GET /v2/models/{model_name}/ready",
        "GET /v2/models/{model_name}/versions/{model_version}",
        "GET /v2/models/{model_name}/versions/{model_version}/ready",
        "POST /v2/models/{model_name}/infer",
        "POST /v2/models/{model_name}/versions/{model_version}/infer",
    ]


def test_schemathesis_finds_nothing(oip_server: ServerProcess, tmp_path: Path) -> None:
    outcome = run_schemathesis(oip_server.url, "iris", "1", tmp_path)
    assert_clean(outcome, OPERATIONS)
    oip_server.assert_alive()
    assert "Traceback" not in oip_server.stderr(), oip_server.log()
