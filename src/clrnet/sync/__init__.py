"""Synchronisation: the ruler (``ruler``), the working frame (``frame``), the readout's input and
resampling onto a frame (``align``), and the scale hypotheses a fragment implies (``search``)."""
