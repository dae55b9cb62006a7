"""Credentials, permissions, retries and the runtime's errors, through the real boto3 client."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aws_fake import FakeAws
from aws_support import Recorder, image_ref, release

from deployer.errors import EXIT_MISSING_DEPENDENCY, DeployerError
from deployer.providers import Strategy
from deployer_aws.aws import AccessDenied, CredentialsError

V1 = release("one")


def test_missing_credentials_name_the_chain(
    fake: FakeAws, provider: Any, progress: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    p = provider()
    with pytest.raises(CredentialsError) as caught:
        p.deploy(V1, image_ref(V1), Strategy(), progress)
    message = str(caught.value)
    for source in ("environment variables", "shared config", "SSO", "container", "instance"):
        assert source in message, message
    assert caught.value.exit_code == EXIT_MISSING_DEPENDENCY
    assert fake.requests == []  # nothing was sent unsigned


def test_missing_profile_is_named(provider: Any, progress: Recorder) -> None:
    with pytest.raises(DeployerError, match="AWS profile 'nope' is not in the shared config"):
        provider(profile="nope").status()


def test_rejected_credentials(fake: FakeAws, provider: Any) -> None:
    fake.fail("DescribeEndpoint", "UnrecognizedClientException", 400, message="bad token")
    with pytest.raises(CredentialsError, match="rejected the credentials for sagemaker:Desc"):
        provider().status()


def test_access_denied_names_the_action_and_resource(
    fake: FakeAws, provider: Any, progress: Recorder
) -> None:
    message = (
        "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: "
        "sagemaker:CreateModel on resource: arn:aws:sagemaker:us-east-1:123456789012:model/x"
    )
    fake.fail("CreateModel", "AccessDeniedException", 400, message=message)
    with pytest.raises(AccessDenied) as caught:
        provider().deploy(V1, image_ref(V1), Strategy(), progress)
    text = str(caught.value)
    assert "AWS denied sagemaker:CreateModel on model iris-prod-" in text
    assert "not authorized" in text and "IAM policy" in text
    assert "testing" not in text  # no credential in the message


def test_access_denied_on_ecr(fake: FakeAws, provider: Any, progress: Recorder) -> None:
    fake.fail("GetAuthorizationToken", "AccessDeniedException", 400, message="no ecr")
    from deployer_aws import registry

    with pytest.raises(AccessDenied, match="ecr:GetAuthorizationToken on ECR registry for iris"):
        registry.registry_login(provider().aws, "iris")


class SdkSleeps:
    """Stands in for ``time`` in botocore.endpoint, where the SDK sleeps before a retry:
    records each sleep with the number of CreateEndpoint calls made so far."""

    def __init__(self, fake: FakeAws) -> None:
        self.fake = fake
        self.sleeps: list[tuple[float, int]] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append((seconds, len(self.fake.calls("CreateEndpoint"))))
        time.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_throttling_is_retried_with_backoff(
    fake: FakeAws, provider: Any, progress: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.endpoint

    sdk = SdkSleeps(fake)
    monkeypatch.setattr(botocore.endpoint, "time", sdk)
    fake.fail("CreateEndpoint", "ThrottlingException", 400, times=2, message="Rate exceeded")
    deployment = provider().deploy(V1, image_ref(V1), Strategy(), progress)
    assert deployment.changed
    assert len(fake.calls("CreateEndpoint")) == 3  # two throttled, then through
    # the SDK backed off after each throttled attempt, before sending the next one
    assert [calls for _, calls in sdk.sleeps] == [1, 2]
    assert fake.endpoint("iris-prod").endpoint_name == "iris-prod"


@pytest.mark.parametrize(
    ("code", "status"), [("ServiceUnavailable", 503), ("InternalFailure", 500)]
)
def test_transient_errors_are_retried(
    fake: FakeAws, provider: Any, progress: Recorder, code: str, status: int
) -> None:
    fake.fail("DescribeEndpoint", code, status, times=2)
    assert provider().status().state == "absent"
    assert len(fake.calls("DescribeEndpoint")) == 3


def test_adaptive_retry_mode(fake: FakeAws, provider: Any) -> None:
    fake.fail("DescribeEndpoint", "ThrottlingException", 400, times=1)
    assert provider(retry_mode="adaptive").status().state == "absent"
    assert len(fake.calls("DescribeEndpoint")) == 2


def test_throttling_that_never_ends_is_reported(fake: FakeAws, provider: Any) -> None:
    fake.fail("DescribeEndpoint", "ThrottlingException", 400, times=10, message="Rate exceeded")
    with pytest.raises(DeployerError) as caught:
        provider(max_attempts=2).status()
    message = str(caught.value)
    assert "AWS kept throttling sagemaker:DescribeEndpoint on endpoint iris-prod" in message
    assert "after 2 attempts" in message and "max_attempts" in message
    assert len(fake.calls("DescribeEndpoint")) == 2


def test_unreachable_api(provider: Any) -> None:
    from deployer.image.containers import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    p = provider(max_attempts=1, endpoint_urls={"sagemaker": dead})
    with pytest.raises(DeployerError, match="cannot reach the sagemaker API"):
        p.status()


def test_invoke_goes_through_the_runtime(fake: FakeAws, provider: Any, progress: Recorder) -> None:
    p = provider()
    deployment = p.deploy(V1, image_ref(V1), Strategy(), progress)
    p.wait(deployment, 120, progress)
    fake.model_answers.append((200, b'{"predictions": [0, 0]}', "application/json"))
    answer = p.invoke(b"[[0,0,0,0],[0,0,0,0]]", "application/json", "application/json")
    assert (answer.status, answer.body, answer.content_type) == (
        200,
        b'{"predictions": [0, 0]}',
        "application/json",
    )
    (call,) = fake.calls("InvokeEndpoint")
    assert call == {"EndpointName": "iris-prod", "Body": b"[[0,0,0,0],[0,0,0,0]]"}


def test_model_error_carries_the_containers_answer(
    fake: FakeAws, provider: Any, progress: Recorder
) -> None:
    p = provider()
    p.wait(p.deploy(V1, image_ref(V1), Strategy(), progress), 120, progress)
    fake.model_answers.append((500, b'{"error": "ValueError: boom"}', "application/json"))
    answer = p.invoke(b"[[1,2,3,4]]", "application/json")
    assert answer.status == 500
    assert answer.body == b'{"error": "ValueError: boom"}'
    assert answer.content_type == "application/json"


def test_invoke_of_a_missing_endpoint(fake: FakeAws, provider: Any) -> None:
    fake.model_answers.append((200, b"{}", "application/json"))  # the fake answers invoke
    with pytest.raises(DeployerError, match="endpoint iris-prod does not exist") as caught:
        provider().invoke(b"[[1,2,3,4]]", "application/json")
    assert "deployer push --to prod" in str(caught.value)
