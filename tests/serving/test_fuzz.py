"""Property-based fuzzing of request bodies: the server never answers 5xx and stays up.

The iris pipeline does not raise on input that passed validation, so any 5xx here is a
server bug (an exception that escaped as "the model raised").
"""

from __future__ import annotations

import io
import json
import string
from typing import Any

import httpx
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from serving_support import VERTEX_PREDICT, SklearnServer

from deployer.flavors.base import OIP_TO_NUMPY
from deployer.serving import routes

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
    database=None,
)

# Bounded: the pipeline's scaler overflows to inf (and sklearn raises) near 1e308.
finite = st.floats(-1e9, 1e9)
scalars = st.none() | st.booleans() | st.integers() | finite | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)
# Near-valid rows: right or wrong widths, numbers or junk.
rows = st.lists(
    st.lists(finite | st.integers(-(2**70), 2**70) | scalars, min_size=0, max_size=6),
    min_size=0,
    max_size=5,
)
row_payloads = (
    rows
    | st.fixed_dictionaries(
        {"instances": rows | json_values},
        optional={"parameters": json_values | st.fixed_dictionaries({"method": json_values})},
    )
    | st.fixed_dictionaries({"inputs": rows | json_values})
    | st.fixed_dictionaries({"dataframe_split": st.fixed_dictionaries({"data": rows})})
    | json_values
)
# Header values a client can send (no leading or trailing blanks).
header_text = st.text(alphabet=string.ascii_letters + string.digits + "/*;=.-+ ,", max_size=30).map(
    str.strip
)
content_types = (
    st.sampled_from(
        ["application/json", "text/csv", "application/x-npy", "", "application/jsonlines"]
    )
    | header_text
)
accepts = (
    st.none()
    | st.sampled_from(
        ["*/*", "application/json", "text/csv", "application/x-npy", "text/*", "image/png"]
    )
    | header_text
)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)
npy_arrays = (
    hnp.arrays(
        dtype=hnp.floating_dtypes(),
        shape=shapes,
        elements={"min_value": -1000, "max_value": 1000, "allow_nan": False},
    )
    | hnp.arrays(dtype=hnp.integer_dtypes() | hnp.boolean_dtypes(), shape=shapes)
    | hnp.arrays(dtype=hnp.complex_number_dtypes(), shape=shapes, elements={"max_magnitude": 10})
    | hnp.arrays(dtype=hnp.unicode_string_dtypes() | hnp.datetime64_dtypes(), shape=shapes)
)


def dump_json(value: Any) -> bytes:
    """stdlib json: unlike orjson it encodes integers beyond 64 bits."""
    return json.dumps(value).encode()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


csv_text = st.lists(
    st.lists(finite.map(repr) | st.integers().map(str) | st.text(max_size=5), max_size=6).map(
        ",".join
    ),
    max_size=5,
).map("\n".join)
bodies = (
    row_payloads.map(dump_json)
    | st.binary(max_size=200)
    | csv_text.map(str.encode)
    | npy_arrays.map(npy_bytes)
    | npy_arrays.map(npy_bytes).flatmap(
        lambda b: st.integers(0, len(b)).map(lambda n: b[:n])  # truncated .npy
    )
)

tensors = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=5) | json_values,
        "shape": st.lists(st.integers(-2, 10), max_size=3) | json_values,
        "datatype": st.sampled_from(sorted(OIP_TO_NUMPY)) | json_values,
        "data": rows | st.lists(finite, max_size=12) | json_values,
    },
)
oip_payloads = (
    st.fixed_dictionaries(
        {},
        optional={
            "inputs": st.lists(tensors, max_size=2) | json_values,
            "outputs": st.lists(st.fixed_dictionaries({"name": json_values}), max_size=2)
            | json_values,
            "parameters": st.dictionaries(st.text(max_size=6), json_values, max_size=3)
            | json_values,
            "id": json_values,
        },
    )
    | json_values
)


def valid_tensor_payloads() -> st.SearchStrategy[dict[str, Any]]:
    """Well-formed FP32/FP64/INT tensors of 4 features with random values."""
    return st.tuples(
        st.integers(1, 5), st.sampled_from(["FP32", "FP64", "INT32", "INT64", "BOOL"])
    ).flatmap(
        lambda spec: st.lists(
            st.integers(-100, 100)
            if spec[1].startswith("INT")
            else (st.booleans() if spec[1] == "BOOL" else st.floats(-1e6, 1e6)),
            min_size=spec[0] * 4,
            max_size=spec[0] * 4,
        ).map(
            lambda data: {
                "inputs": [{"name": "x", "shape": [spec[0], 4], "datatype": spec[1], "data": data}]
            }
        )
    )


def check(server: SklearnServer, answer: httpx.Response) -> None:
    """No 5xx, errors as ``{"error": ...}``, process alive.

    One 500 is the model's own: sklearn refuses NaN and infinity, which CSV and .npy
    can carry ("nan", "inf"); the server passes those through, as models like XGBoost
    take NaN as a missing value.
    """
    if answer.status_code == 500:
        assert answer.json()["error"].startswith("ValueError: Input X contains"), answer.text
    else:
        assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert list(answer.json()) == ["error"]
    assert server.server.alive()


@FUZZ
@given(
    path=st.sampled_from([routes.SAGEMAKER_INVOCATIONS, routes.AZURE_SCORING]),
    body=bodies,
    content_type=content_types,
    accept=accepts,
)
def test_fuzz_invocations(
    sklearn_server: SklearnServer, path: str, body: bytes, content_type: str, accept: str | None
) -> None:
    headers = {"content-type": content_type}
    if accept is not None:
        headers["accept"] = accept
    answer = sklearn_server.server.client.post(path, content=body, headers=headers)
    check(sklearn_server, answer)


@FUZZ
@given(body=oip_payloads.map(dump_json) | st.binary(max_size=100))
def test_fuzz_oip_infer(sklearn_server: SklearnServer, body: bytes) -> None:
    answer = sklearn_server.server.client.post("/v2/models/iris/infer", content=body)
    check(sklearn_server, answer)


@settings(FUZZ, max_examples=30)
@given(payload=valid_tensor_payloads())
def test_fuzz_valid_oip_tensors_predict(sklearn_server: SklearnServer, payload: Any) -> None:
    answer = sklearn_server.server.client.post("/v2/models/iris/infer", json=payload)
    assert answer.status_code == 200, answer.text
    output = answer.json()["outputs"][0]
    rows = payload["inputs"][0]["shape"][0]
    assert output["shape"] == [rows]
    assert set(output["data"]) <= {0, 1, 2}


@FUZZ
@given(
    body=st.fixed_dictionaries({"instances": rows | json_values}).map(dump_json)
    | st.binary(max_size=100)
)
def test_fuzz_vertex_predict(sklearn_server: SklearnServer, body: bytes) -> None:
    answer = sklearn_server.server.client.post(VERTEX_PREDICT, content=body)
    check(sklearn_server, answer)


def test_still_serving_after_the_fuzz(sklearn_server: SklearnServer, sklearn_model: Any) -> None:
    client = sklearn_server.server.client
    answer = client.post(routes.SAGEMAKER_INVOCATIONS, json=[[6.7, 3.0, 5.2, 2.3]])
    assert answer.json() == {"predictions": sklearn_model.predict([[6.7, 3.0, 5.2, 2.3]]).tolist()}
    assert client.get(routes.SAGEMAKER_PING).status_code == 200
