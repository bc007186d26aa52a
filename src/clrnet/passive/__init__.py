"""The passive detector (PSCC-Net): was a photo that was never protected edited, and where.

``network`` (top-down and bottom-up paths), ``sccm`` (the correlation module), ``backbone``
(EfficientNet-Lite0), ``detect`` (inference with the shipped weights), ``classical`` (ELA and
NOI1, the paper's unsupervised baselines). Imports only ``clrnet.core``.
"""
