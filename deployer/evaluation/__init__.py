"""``deployer evaluate``: run the project's model over a labelled data set and measure it.

Modules, one job each: ``data`` (CSV/JSONL/Parquet read in batches with pyarrow),
``scoring`` (the model in process or a running target, as predict/predict_proba),
``metrics`` (``sklearn.metrics`` only), ``thresholds`` (the precision/recall trade-off and
``--choose-threshold``), ``report`` (PNG + HTML), ``record`` (``evaluation`` in
deployer.lock) and ``run`` (the loop and its typed result).
"""

from __future__ import annotations
