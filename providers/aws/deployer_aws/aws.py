"""boto3 clients with the SDK's own retry configuration, and AWS errors a user can act on.

Credentials come from boto3's default chain only; nothing here ever formats a key.
"""

from __future__ import annotations

from typing import Any

from deployer.providers import DeployerError, MissingDependencyError, UsageError
from deployer_aws.options import SageMakerOptions

# The IAM action prefix of each API we call.
IAM_PREFIX = {
    "sagemaker": "sagemaker",
    "sagemaker-runtime": "sagemaker",
    "ecr": "ecr",
    "application-autoscaling": "application-autoscaling",
    "cloudwatch": "cloudwatch",
    "s3": "s3",
    "logs": "logs",
}
URL_OPTION = {
    "sagemaker": "sagemaker",
    "sagemaker-runtime": "runtime",
    "ecr": "ecr",
    "application-autoscaling": "autoscaling",
    "cloudwatch": "cloudwatch",
    "s3": "s3",
    "logs": "logs",
}
CREDENTIAL_CHAIN = (
    "environment variables (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN), "
    "the shared config and credentials files (~/.aws/config, ~/.aws/credentials; "
    "AWS_PROFILE or the 'profile' option), web identity (AWS_WEB_IDENTITY_TOKEN_FILE), "
    "IAM Identity Center (SSO) sessions, the container credentials endpoint (ECS/EKS), and "
    "EC2 instance metadata (IMDS)"
)
DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "NotAuthorized",
}
BAD_CREDENTIALS = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "RequestExpired",
}
THROTTLED = {
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
}


class CredentialsError(MissingDependencyError):
    """No usable AWS credentials were found, or AWS rejected them."""


class AccessDenied(DeployerError):
    """The credentials work but lack a permission; names the action and the resource."""

    def __init__(self, action: str, resource: str, message: str) -> None:
        super().__init__(
            f"AWS denied {action} on {resource}: {message}",
            hint=f"grant {action} to the identity deployer runs as (IAM policy)",
        )
        self.action = action
        self.resource = resource


class AwsError(DeployerError):
    """An AWS API call failed; carries the service's error code."""

    def __init__(self, message: str, code: str = "", *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code


_LOADER: list[Any] = []  # botocore's JSON model loader, shared: models parse once per process


def _botocore_session() -> Any:
    """A fresh botocore session (own credentials) reusing the process's model loader."""
    import botocore.session

    core = botocore.session.get_session()
    if _LOADER:
        core.register_component("data_loader", _LOADER[0])
    else:
        _LOADER.append(core.get_component("data_loader"))
    return core


class Aws:
    """Lazily created boto3 clients for one target's region, profile and endpoint overrides."""

    def __init__(self, options: SageMakerOptions) -> None:
        self.options = options
        self._session: Any = None
        self._clients: dict[str, Any] = {}

    def session(self) -> Any:
        if self._session is None:
            import boto3
            from botocore.exceptions import ProfileNotFound

            try:
                self._session = boto3.Session(
                    botocore_session=_botocore_session(),
                    profile_name=self.options.profile,
                    region_name=self.options.region,
                )
            except ProfileNotFound:
                raise _no_profile(self.options.profile) from None
        return self._session

    def client(self, service: str) -> Any:
        if service not in self._clients:
            from botocore.config import Config

            options = self.options
            config = Config(
                region_name=options.region,
                # total_max_attempts counts the first attempt (Config's max_attempts does not)
                retries={"mode": options.retry_mode, "total_max_attempts": options.max_attempts},
                connect_timeout=10,
                read_timeout=70 if service == "sagemaker-runtime" else 60,
                user_agent_extra="deployer-aws",
            )
            url = getattr(options.endpoint_urls, URL_OPTION[service])
            from botocore.exceptions import ProfileNotFound

            try:
                client = self.session().client(service, config=config, endpoint_url=url)
            except ProfileNotFound:
                raise _no_profile(self.options.profile) from None
            self._clients[service] = client
        return self._clients[service]

    def call(
        self, service: str, operation: str, resource: str, absent: str | None = None, **params: Any
    ) -> Any:
        """``client.operation(**params)``; None when the error matches ``absent`` (not found).

        Every other failure becomes a DeployerError naming the action and ``resource``.
        """
        from botocore.exceptions import ClientError

        client = self.client(service)
        try:
            return getattr(client, operation)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = str(error.get("Code", "")), str(error.get("Message", ""))
            if absent and (absent == code or absent in message):
                return None
            raise client_error(exc, service, resource, self.options) from None
        except Exception as exc:
            translated = translate(exc, service, resource, self.options)
            if translated is None:
                raise
            raise translated from None


def _no_profile(profile: str | None) -> UsageError:
    return UsageError(
        f"AWS profile {profile!r} is not in the shared config files",
        hint="fix the 'profile' option, or define it with `aws configure --profile NAME`",
    )


def action_name(service: str, operation: str) -> str:
    return f"{IAM_PREFIX.get(service, service)}:{operation}"


def translate(
    exc: Exception, service: str, resource: str, options: SageMakerOptions
) -> DeployerError | None:
    """The DeployerError for an exception raised by botocore (None if it is not botocore's)."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.ClientError):
        return client_error(exc, service, resource, options)
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return CredentialsError(
            f"no AWS credentials found for {service} in {options.region}; "
            f"boto3's default chain tried {CREDENTIAL_CHAIN}",
            hint="run `aws configure` or `aws sso login`, set AWS_PROFILE, or export "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        )
    if isinstance(exc, bx.SSOError | bx.TokenRetrievalError | bx.CredentialRetrievalError):
        return CredentialsError(
            f"AWS credentials could not be loaded: {type(exc).__name__}: {exc}",
            hint="run `aws sso login` (with --profile if you use one) and try again",
        )
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError):
        return AwsError(f"cannot reach the {service} API for {resource}: {exc}")
    if isinstance(exc, bx.ReadTimeoutError):
        return AwsError(f"the {service} API did not answer in time for {resource}: {exc}")
    if isinstance(exc, bx.ParamValidationError):
        return AwsError(f"invalid request to {service} for {resource}: {exc}")
    if isinstance(exc, bx.BotoCoreError):
        return AwsError(f"{service} call for {resource} failed: {exc}")
    return None


def client_error(exc: Any, service: str, resource: str, options: SageMakerOptions) -> DeployerError:
    """The DeployerError for a botocore ClientError (the service answered with an error)."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")) or code
    action = action_name(service, exc.operation_name)
    metadata = exc.response.get("ResponseMetadata", {})
    attempts = int(metadata.get("RetryAttempts", 0)) + 1
    if code in DENIED:
        return AccessDenied(action, resource, message)
    if code in BAD_CREDENTIALS:
        return CredentialsError(
            f"AWS rejected the credentials for {action}: {code}: {message}",
            hint="refresh them (aws sso login, a new session token) or check the profile",
        )
    if code in THROTTLED:
        return AwsError(
            f"AWS kept throttling {action} on {resource} after {attempts} attempts "
            f"({options.retry_mode} retries): {message}",
            code,
            hint="raise max_attempts, use retry_mode: adaptive, or push fewer targets at once",
        )
    status = metadata.get("HTTPStatusCode")
    retried = f" after {attempts} attempts" if attempts > 1 else ""
    return AwsError(f"{action} on {resource} failed{retried}: {code} ({status}): {message}", code)
