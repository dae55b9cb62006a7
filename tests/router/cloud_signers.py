"""The provider plugins the router's auth tests sign with: the real provider classes of
deployer-aws, deployer-gcp and deployer-azure (their ``router_signer``), looked up by name
the way the router does, without the rest of the plugin registry."""

from __future__ import annotations

from deployer_aws.provider import SageMakerProvider
from deployer_azure.provider import AzureMLProvider
from deployer_gcp.provider import VertexProvider

PROVIDERS = {
    "sagemaker": SageMakerProvider,
    "vertex": VertexProvider,
    "azureml": AzureMLProvider,
}
