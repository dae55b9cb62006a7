"""An AWS environment for tests and benchmarks against fakes: static fake keys, and no
other credential source (profile, web identity, container endpoint, instance metadata,
shared files, endpoint override), so botocore reaches nothing but what the test sets up.
"""

from __future__ import annotations

from pathlib import Path

# Variables that would make botocore's chain find something other than the fake keys.
CREDENTIAL_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_ENDPOINT_URL",
)


def fake_aws_environment(missing: Path) -> dict[str, str]:
    """The variables to set (after unsetting CREDENTIAL_VARIABLES); ``missing`` is a
    folder that does not exist, where the shared config files are looked for."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(missing / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(missing / "credentials"),
        "BOTO_CONFIG": str(missing / "boto.cfg"),
    }
