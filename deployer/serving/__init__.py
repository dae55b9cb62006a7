"""The in-image model server: one ASGI app that answers every cloud's serving contract.

Everything under ``deployer.serving`` (and ``deployer.flavors``) runs inside the image,
which installs only ``deployer.serving.requirements.RUNTIME_REQUIREMENTS`` plus the
flavour's library. Never import typer, rich, pydantic or a cloud SDK from here.
"""
