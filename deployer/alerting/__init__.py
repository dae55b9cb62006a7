"""Alert rules and a Grafana dashboard for a deployed model (``deployer alerts render``,
``deployer dashboard render``): ``rules`` (the conditions, in no platform's syntax), one
renderer module per format (``prometheus``, ``cloudwatch``, ``gcp``, ``azure``),
``render`` (the dispatch and its result), ``dashboard``. Standard library and the
project's config only: no cloud SDK."""
