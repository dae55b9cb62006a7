"""``s3://<bucket>/<key>`` data URIs, read with boto3 and the user's usual credentials
(boto3's default chain: environment, ~/.aws files and AWS_PROFILE, SSO, web identity,
container and instance metadata). AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL) points it at
another S3 endpoint, as for every boto3 client."""

from __future__ import annotations

from typing import IO, Any, cast

from deployer.providers import RemoteObject, UsageError, split_uri

FORM = "s3://<bucket>/<key>"
_MISSING = {"404", "NoSuchKey", "NotFound"}


def open_s3(uri: str) -> RemoteObject:
    """The object ``uri`` names, its size from HeadObject; a UsageError naming the URI
    when the bucket or the object does not exist, or credentials are missing or refused."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    bucket, key = split_uri(uri, 2, FORM)
    client = boto3.session.Session().client("s3")
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except NoCredentialsError:
        raise UsageError(
            f"{uri}: no AWS credentials found",
            hint="configure them as for the AWS CLI (aws configure, AWS_PROFILE, ...)",
        ) from None
    except ClientError as exc:
        raise UsageError(f"{uri}: {_reason(client, bucket, exc)}") from None
    except BotoCoreError as exc:
        raise UsageError(f"{uri}: cannot reach S3: {exc}") from None

    def reader() -> IO[bytes]:
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
        except (ClientError, BotoCoreError) as exc:
            raise UsageError(f"{uri}: {exc}") from None
        return cast("IO[bytes]", body)

    return RemoteObject(uri, int(head["ContentLength"]), reader)


def _reason(client: Any, bucket: str, exc: Any) -> str:
    """What a failed HeadObject means: no bucket, no object, or what S3 said."""
    from botocore.exceptions import ClientError

    code = str(exc.response.get("Error", {}).get("Code", ""))
    if code in {"403", "AccessDenied"}:
        return "S3 refused access (403): check the credentials and the bucket's policy"
    if code not in _MISSING:
        return f"S3 answered {code}: {exc}"
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as bucket_exc:
        if str(bucket_exc.response.get("Error", {}).get("Code", "")) in _MISSING | {"NoSuchBucket"}:
            return f"the bucket {bucket!r} does not exist"
    return f"no such object in the bucket {bucket!r}"
