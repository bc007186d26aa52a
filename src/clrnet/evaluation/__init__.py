"""The studies behind ``clrnet eval <study>`` (``studies`` names them), the protocol they share
(``protocol``), the inpainting baselines (``baselines``), tables and figures (``tables``),
``clrnet bench`` and the demo."""
