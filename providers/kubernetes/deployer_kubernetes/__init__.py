"""deployer provider for Kubernetes."""
