"""Watching a deployed model: the training baseline (``deployer baseline``), drift of the
captured live traffic against it (``deployer drift``) and concept drift from late labels
(``deployer evaluate --labels``). numpy here; pyarrow, scipy and matplotlib lazily."""
