"""Training the learned parts of the designed model (``refine``: the reconstruction network,
``tamper``: the tamper network), their data (``data``), checkpoints and resuming
(``checkpoint``) and data-parallel runs (``distributed``). The paper's own trainer is in ``paper``."""
