"""Batch Transform and data capture with the REAL image: the fake pulls the published image
from the local registry and runs it as SageMaker does (``serve``); Batch Transform sends it
the S3 input's records through ``/invocations`` (aws_batch_fake.py), and a push with
``monitoring.capture`` captures the real invocations (aws_capture_fake.py), which
``captured()`` reads back: the predictions are the model's."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import yaml
from aws_fake import FakeAws
from aws_support import Recorder

from deployer.providers import Release
from deployer.providers.batch import BatchSpec

pytestmark = pytest.mark.docker
BUCKET = "batch-real"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]  # iris: setosa (0), virginica (2)


@pytest.fixture(scope="module", autouse=True)
def _clean_up(docker: Any, registry: Any, fake_server: FakeAws) -> Iterator[None]:
    """Afterwards: remove the model container and the registry references we made."""
    yield
    fake_server.remove_containers()
    for image in [
        *docker.images.list(name=f"{registry.host}/iris-batch"),
        *docker.images.list(name=f"{registry.host}/iris-test"),
    ]:
        for ref in [*image.tags, *image.attrs.get("RepoDigests", [])]:
            if ref.startswith(f"{registry.host}/"):
                with contextlib.suppress(Exception):
                    docker.images.remove(ref, noprune=True)


def test_batch_transform_runs_the_real_image_over_the_s3_input(
    docker: Any, registry: Any, iris_image: Any, fake: FakeAws, provider: Any
) -> None:
    fake.registry, fake.docker = registry, docker
    p = provider(project="iris-batch")
    progress = Recorder()
    ref = p.publish(iris_image, progress)
    release = Release("iris-batch", iris_image, [[0, 0, 0, 0]], {})
    client = boto3.client("s3", endpoint_url=fake.url, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    csv = "".join(",".join(str(v) for v in row) + "\n" for row in ROWS)
    client.put_object(Bucket=BUCKET, Key="csv/part-1.csv", Body=csv.encode())
    client.put_object(Bucket=BUCKET, Key="csv/part-2.csv", Body=csv.encode()[::-1][1:][::-1])
    lines = [{"id": i, "y": 9, "features": row} for i, row in enumerate(ROWS, 1)]
    body = "".join(json.dumps(line) + "\n" for line in lines)
    client.put_object(Bucket=BUCKET, Key="jsonl/rows.jsonl", Body=body.encode())
    client.put_object(Bucket=BUCKET, Key="bad/rows.csv", Body=b"5.1,3.5,1.4,0.2\n1,2\n")

    def run(name: str, **fields: Any) -> Any:
        spec = BatchSpec(job_name=name, **fields)
        job = p.batch_submit(release, ref, spec, progress)
        assert fake.transforms[job.job_id].done.wait(120)
        return p.batch_status(job.job_id)

    def out(key: str) -> str:
        return client.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()  # type: ignore[no-any-return]

    csv_job = run(
        "iris-csv",
        input_uri=f"s3://{BUCKET}/csv/",
        output_uri=f"s3://{BUCKET}/scored/",
        format="csv",
    )
    assert csv_job.complete, (csv_job.reason, csv_job.failures)
    assert out("scored/part-1.csv.out").split() == ["0", "2"]
    assert out("scored/part-2.csv.out").split() == ["0", "2"]

    keep = run(
        "iris-jsonl",
        input_uri=f"s3://{BUCKET}/jsonl/rows.jsonl",
        output_uri=f"s3://{BUCKET}/kept/",
        format="jsonl",
        keep=("id",),
        label="y",
    )
    assert keep.complete, (keep.reason, keep.failures)
    scored = [json.loads(line) for line in out("kept/rows.jsonl.out").splitlines()]
    assert scored == [{"id": 1, "SageMakerOutput": 0}, {"id": 2, "SageMakerOutput": 2}]

    bad = run(
        "iris-bad",
        input_uri=f"s3://{BUCKET}/bad/",
        output_uri=f"s3://{BUCKET}/bad-out/",
        format="csv",
    )
    assert bad.state == "failed"
    assert bad.reason is not None and "s3://batch-real/bad/rows.csv: records 1-2" in bad.reason
    assert "400" in bad.reason
    assert any("bad/rows.csv" in line for line in p.batch_logs("iris-bad"))


def test_a_push_with_capture_captures_the_real_models_answers(
    docker: Any, registry: Any, iris_project: Any, fake: FakeAws, provider: Any
) -> None:
    from deployer import Project

    options = fake.options(instance_type="ml.c5.large")
    config = {
        "name": iris_project.name,  # the same image as iris_image
        "model": {"path": "model.joblib"},
        "targets": {"aws": options},
        "monitoring": {"capture": {"sample": 1.0, "destination": "s3://capture-real/iris"}},
    }
    file = iris_project.root / "aws-capture.deployer.yaml"
    file.write_text(yaml.safe_dump(config))
    fake.registry, fake.docker = registry, docker
    boto3.client("s3", endpoint_url=fake.url, region_name="us-east-1").create_bucket(
        Bucket="capture-real"
    )
    project = Project.load(file)
    (plan,) = project.plan(["aws"])
    endpoint = f"{iris_project.name}-aws"
    assert any(c.resource == f"data capture of endpoint {endpoint}" for c in plan.changes)
    result = project.push(["aws"], timeout=60)
    assert result.ok, result.targets[0].error
    assert project.predict("aws", b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n", "text/csv").status == 200
    assert project.predict("aws", b"[[6.7, 3.0, 5.2, 2.3]]").status == 200
    p = provider(target="aws", project=iris_project.name, instance_type="ml.c5.large")
    records = list(p.captured())
    csv = next(r for r in records if r.rows and r.rows[0].get("f0") == 5.1)
    assert csv.rows == [
        {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2},
        {"f0": 6.7, "f1": 3.0, "f2": 5.2, "f3": 2.3},
    ]
    assert csv.predictions == [0, 2]
    json_record = next(
        r for r in records if r.rows == [{"f0": 6.7, "f1": 3.0, "f2": 5.2, "f3": 2.3}]
    )
    assert json_record.predictions == [2]
    again = project.push(["aws"], timeout=60)
    assert again.ok and again.targets[0].outcome == "unchanged"
    project.destroy(["aws"])
