"""The router: one endpoint in front of deployed backends. ``front`` is the local target's
switchable single-upstream proxy; it runs in the router image (see deployer.image.router_image)."""
