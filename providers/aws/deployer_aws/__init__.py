"""deployer-aws: the SageMaker provider."""
