"""deployer-router: the built-in router, one endpoint in front of every deployed backend
(see router/README.md). router.yaml's schema and its update from a push stay in the core
(deployer.router.manifest), with the signer lookup (deployer.router.auth, .plugins).

- ``__main__``: ``python -m deployer_router serve|validate router.yaml`` (the image's entry)
- ``app``: the Router (start, reload, stop) and ``run``; its parts: ``logs`` (logging set
  up), ``probes`` (health checks per backend), ``credentials`` (the refresh schedule),
  ``admin`` (the /-/router/* routes and the metrics path)
- ``server`` / ``proxy`` / ``client``: the HTTP server, the forwarding, the backend pool
- ``policy``, ``health``, ``retry``, ``accesslog``, ``busypoll``, ``tasks``
- ``metrics``: the counters the proxy keeps; ``scrape``: /metrics built from them
- ``background``: the router on its own loop in a thread (scripts, tests)
- ``render``: configs for HAProxy, NGINX, Envoy, Kubernetes and Route 53
- ``image``, ``image_providers``, ``requirements``: the router's container images
- ``cli``: ``deployer router ...`` (entry point group ``deployer.commands``)
"""
