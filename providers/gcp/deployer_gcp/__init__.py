"""deployer-gcp: the ``vertex`` provider (Vertex AI online prediction, Artifact Registry).

The provider class is ``deployer_gcp.provider.VertexProvider``; google-cloud-aiplatform is
imported only when a method needs it.
"""
