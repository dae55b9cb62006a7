"""The router: one endpoint in front of every deployed backend (see README.md here).

- ``manifest``: router.yaml (schema, load/write, ``from_backends`` for push)
- ``app`` / ``proxy`` / ``server`` / ``client``: the built-in router (``python -m
  deployer.router serve router.yaml``)
- ``policy``, ``health``, ``retry``, ``auth``, ``metrics``, ``accesslog``: its parts
- ``render``: configs for HAProxy, NGINX, Envoy, Kubernetes and Route 53
- ``cli``: ``deployer router ...``
- ``front``: the local target's switchable single-upstream proxy (router image)
"""
