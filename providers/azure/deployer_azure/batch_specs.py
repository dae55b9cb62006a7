"""What a batch job needs on Azure ML: the batch endpoint, the scoring script's code
asset, the batch deployment of the release's image, and the job's input and output paths.

Azure batch deployments call a scoring script, not HTTP. The image carries the driver
(``deployer.serving.azure_batch``: ``init()``/``run(mini_batch)`` over the in-image batch
runner); the code asset is a one-line ``score.py`` importing it, uploaded once (by its
content hash) next to the workspace's default datastore's other code and registered as
``deployer-azure-batch`` (a code version PUT through the ARM pipeline: azure-ai-ml's own
code upload only takes local folders through SAS URIs). Data paths: ``az://<account>/
<container>/<path>`` becomes the path on the workspace datastore registered for that
container; ``azureml://...`` paths and ``azureml:<data asset>:<version>`` pass as they are.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from deployer.providers import UsageError
from deployer.providers import batch as sdk
from deployer_azure import client, names
from deployer_azure.options import AzureOptions
from deployer_azure.workspace import Workspace

SCORE_PY = "from deployer.serving.azure_batch import init, run  # noqa: F401\n"
CODE_NAME = "deployer-azure-batch"
OPTIONS_ENV = "DEPLOYER_BATCH_OPTIONS"
API_VERSION = "2025-12-01"
_AZ = re.compile(r"^az://(?P<account>[^/]+)/(?P<container>[^/]+)(?:/(?P<path>.*))?$")


def endpoint_name(ws: Workspace) -> str:
    """The target's batch endpoint: ``batch_endpoint_name``, else ``<endpoint>-batch``."""
    if ws.options.batch_endpoint_name:
        return ws.options.batch_endpoint_name
    return names.endpoint_name(ws.project, f"{ws.target}-batch")


def data_path(uri: str, datastores: Any, field: str) -> str:
    """``uri`` as a path Azure ML jobs read or write; UsageError naming ``field``."""
    if uri.startswith(("azureml://", "azureml:", "https://")):
        return uri
    found = _AZ.match(uri)
    if found is None:
        raise UsageError(
            f"{field}: {uri!r} is not a place Azure ML batch jobs read or write; expected "
            "az://<account>/<container>/<path>, azureml://datastores/<name>/paths/<path> "
            "or azureml:<data asset>:<version>"
        )
    for store in datastores.list():
        if (
            getattr(store, "account_name", None) == found["account"]
            and getattr(store, "container_name", None) == found["container"]
        ):
            return f"azureml://datastores/{store.name}/paths/{found['path'] or ''}"
    raise UsageError(
        f"{field}: {uri}: no datastore of the workspace is the container "
        f"{found['container']!r} of the storage account {found['account']!r}",
        hint="register it (az ml datastore create --type azure_blob) or give an "
        "azureml://datastores/<name>/paths/<path>",
    )


def job_options(spec: sdk.BatchSpec) -> str:
    """The driver's ``DEPLOYER_BATCH_OPTIONS`` for ``spec``."""
    return json.dumps(
        {
            "format": spec.format,
            "keep": list(spec.keep),
            "label": spec.label,
            "columns": list(spec.columns),
            "rows_per_batch": spec.rows_per_request,
        },
        sort_keys=True,
    )


def code_id(ws: Workspace) -> str:
    """The code asset holding ``score.py`` (uploaded and registered when missing)."""
    from azure.core.exceptions import ResourceNotFoundError

    from deployer_azure.data_source import service_client

    version = hashlib.sha256(SCORE_PY.encode()).hexdigest()[:12]
    resource = f"{ws.workspace_scope}/codes/{CODE_NAME}/versions/{version}"
    arm = client.arm_client(ws.options, ws.credential)
    try:
        client.arm_json(arm, "GET", resource, API_VERSION)
        return resource
    except ResourceNotFoundError:
        pass
    store = ws.ml.datastores.get_default()
    folder = f"LocalUpload/{CODE_NAME}/{version}"
    blob = service_client(store.account_name).get_blob_client(
        store.container_name, f"{folder}/score.py"
    )
    blob.upload_blob(SCORE_PY.encode(), overwrite=True)
    account_url = blob.url.split(f"/{store.container_name}/", 1)[0]
    body = {
        "properties": {
            "codeUri": f"{account_url}/{store.container_name}/{folder}",
            "isAnonymous": False,
            "description": "deployer's Azure batch scoring script (the driver is in the image)",
        }
    }
    put_json(arm, resource, body)
    return resource


def put_json(arm: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A PUT through the ARM pipeline (mapped errors as ``client.arm_json``)."""
    from azure.core.exceptions import HttpResponseError
    from azure.core.rest import HttpRequest
    from azure.mgmt.core.exceptions import ARMErrorFormat

    request = HttpRequest(
        "PUT", arm.format_url(path), params={"api-version": API_VERSION}, json=body
    )
    response = arm.send_request(request)
    if response.status_code >= 400:
        raise HttpResponseError(response=response, error_format=ARMErrorFormat)
    return dict(response.json()) if response.content else {}


def endpoint_entity(ws: Workspace, name: str) -> Any:
    from azure.ai.ml.entities import BatchEndpoint

    return BatchEndpoint(name=name, tags=ws.tags(), description="managed by deployer")


def deployment_entity(
    options: AzureOptions,
    endpoint: str,
    name: str,
    image_ref: str,
    code: str,
    spec: sdk.BatchSpec,
    tags: dict[str, str],
) -> Any:
    """A batch deployment of ``image_ref`` whose scoring script is the image's driver."""
    import warnings

    from azure.ai.ml.entities import (
        BatchDeployment,
        BatchRetrySettings,
        CodeConfiguration,
        Environment,
        ResourceConfiguration,
    )

    if not options.batch_compute:
        raise UsageError(
            "batch_compute is not set: Azure ML batch jobs run on a compute cluster",
            hint="set targets.<target>.batch_compute to an AmlCompute cluster of the workspace",
        )
    with warnings.catch_warnings():  # "use ModelBatchDeployment": it requires a model asset
        warnings.simplefilter("ignore")
        return BatchDeployment(
            name=name,
            endpoint_name=endpoint,
            environment=Environment(image=image_ref),
            code_configuration=CodeConfiguration(code=code, scoring_script="score.py"),
            compute=options.batch_compute,
            resources=ResourceConfiguration(instance_count=options.batch_instance_count),
            mini_batch_size=options.batch_mini_batch_size,
            max_concurrency_per_instance=options.batch_max_concurrency_per_instance,
            retry_settings=BatchRetrySettings(
                max_retries=options.batch_max_retries, timeout=options.batch_timeout_seconds
            ),
            error_threshold=options.batch_error_threshold,
            output_action=options.batch_output_action,
            output_file_name=(
                options.batch_output_file_name
                if options.batch_output_action == "append_row"
                else None
            ),
            logging_level="info",
            environment_variables={
                **options.environment_variables,
                OPTIONS_ENV: job_options(spec),
            },
            tags=tags,
            description="managed by deployer",
        )
