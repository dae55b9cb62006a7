"""deployer-azure: the ``azureml`` provider (Azure ML managed online endpoints, ACR).

``provider.py`` is a facade whose methods each delegate to one module; every module
takes the target's ``Workspace`` (workspace.py: options, endpoint name, lazily made
clients, what this process remembers):

- ``plan``: what a push would change; ``registry``: the workspace's ACR and ``publish``;
- ``deploy``: start a release, roll back; ``waiting``: provisioning, then health;
  ``promote``: smoke check and traffic steps (``rollout``), or abandon; ``destroy``;
- ``status``: the endpoint as a Status; ``endpoints``: reading and changing the
  endpoint, its deployments and traffic, by tags;
- ``invoke``: the scoring URI and its key or token (``scoring``); ``backends``: the
  router backend (``route``) and finding an endpoint by its URL;
- ``router_auth`` / ``signers``: how the built-in router signs requests;
- ``client``, ``auth``, ``options``, ``names``, ``specs``: the SDK clients,
  credentials and errors, the target's options, resource names, the SDK entities.
"""
