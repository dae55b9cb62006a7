"""``deployer batch``: batch predictions with the release's image, on any target that
implements ``deployer.providers.batch.RunsBatch``, or in this process.

- ``spec``: deployer.yaml's ``batch:`` defaults and the call's options as a ``BatchSpec``;
- ``in_process``: the model loaded here, scored by the image's own batch runner code
  (``deployer.serving.batch_runner``: same reading, shaping, resumable chunk parts);
- ``records``: one JSON record per job in ``.deployer/batch/<job>.json``, so ``status``,
  ``logs`` and ``cancel`` find the provider's job later;
- ``job``: ``BatchRun``, the typed job ``Project.batch`` returns (``.wait()``, ``.status``,
  ``.output_uri``).
"""
