"""FG-JPEG (the journal paper's Section III-C): a generative JPEG simulator for the attack layer,
and the quality-factor predictor that trains and judges it."""
