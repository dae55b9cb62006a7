"""A faithful fake Kubernetes API server for tests, driven through the real client."""

from k8sfake.controllers import Failure
from k8sfake.runtime import DockerRuntime, EchoRuntime
from k8sfake.server import FakeKube

__all__ = ["DockerRuntime", "EchoRuntime", "Failure", "FakeKube"]
