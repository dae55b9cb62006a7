"""deployer provider for Azure ML managed online endpoints."""
