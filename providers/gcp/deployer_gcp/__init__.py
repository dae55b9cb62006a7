"""deployer-gcp: the ``vertex`` provider (Vertex AI online prediction, Artifact Registry).

``deployer_gcp.provider.VertexProvider`` is a short facade; each method delegates to the
module holding one concept, all of them sharing a ``Scope`` (scope.py: options, owner
labels, lazily created credentials and ``VertexApi``):

- ``plan``: what a push would change; ``deploy``: the endpoint, the version's Model
  (``models``) and the DeployModel call; ``waiting``: follow the operation, then the
  traffic steps (``rollout``, splits in ``traffic``), then record the live version;
- ``status``: the endpoint's state; ``rollback``; ``destroy``; ``invoke`` (rawPredict);
- ``registry``: the image push to Artifact Registry; ``router_auth``: the router's signer;
- ``api``: the Vertex AI GAPIC calls; ``names``, ``errors``, ``credentials``, ``options``.

google-cloud-aiplatform is imported only when a method needs it.
"""
