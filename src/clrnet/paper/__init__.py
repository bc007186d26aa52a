"""CLR-Net as published (``clrnet-small-128``): its networks, training attack layer, config,
trainer, the Table I evaluation and report, and inference at the native frame."""
