"""What ``deployer push`` writes and reads for the router (the router itself is the
deployer-router distribution, package deployer_router):

- ``manifest``: router.yaml (schema, load/write, ``from_backends`` for push)
- ``auth``, ``plugins``: the signer protocol and its lookup in provider plugins
"""
