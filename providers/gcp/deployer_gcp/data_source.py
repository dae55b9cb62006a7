"""``gs://<bucket>/<object>`` data URIs, read with google-cloud-storage and the user's
usual credentials (Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS,
``gcloud auth application-default login``, or the metadata server on Google Cloud).
STORAGE_EMULATOR_HOST points the client at an emulator (the client's own hook)."""

from __future__ import annotations

import os
from typing import IO, Any, cast

from deployer.providers import RemoteObject, UsageError, split_uri

FORM = "gs://<bucket>/<object>"
HINT = "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"


def _client(uri: str) -> Any:
    import google.cloud.storage as storage
    from google.auth.exceptions import DefaultCredentialsError

    # Reading an object needs no project; the client wants one to start.
    project = os.environ.get("GOOGLE_CLOUD_PROJECT") or "<none>"
    try:
        return storage.Client(project=project)
    except DefaultCredentialsError as exc:
        raise UsageError(f"{uri}: no Google Cloud credentials found: {exc}", hint=HINT) from None


def open_gs(uri: str) -> RemoteObject:
    """The object ``uri`` names, its size from its metadata; a UsageError naming the URI
    when the bucket or the object does not exist, or credentials are missing or refused."""
    from google.api_core.exceptions import Forbidden, GoogleAPIError, Unauthorized
    from google.auth.exceptions import GoogleAuthError

    bucket_name, name = split_uri(uri, 2, FORM)
    client = _client(uri)
    bucket = client.bucket(bucket_name)
    try:
        blob = bucket.get_blob(name)
        if blob is None:
            if client.lookup_bucket(bucket_name) is None:
                raise UsageError(f"{uri}: the bucket {bucket_name!r} does not exist")
            raise UsageError(f"{uri}: no such object in the bucket {bucket_name!r}")
    except (Forbidden, Unauthorized) as exc:
        raise UsageError(f"{uri}: Cloud Storage refused access: {exc.message}", hint=HINT) from None
    except GoogleAuthError as exc:
        raise UsageError(f"{uri}: Google Cloud credentials failed: {exc}", hint=HINT) from None
    except GoogleAPIError as exc:
        raise UsageError(f"{uri}: Cloud Storage answered: {exc}") from None

    def reader() -> IO[bytes]:
        return cast("IO[bytes]", blob.open("rb"))

    return RemoteObject(uri, int(blob.size) if blob.size is not None else None, reader)
