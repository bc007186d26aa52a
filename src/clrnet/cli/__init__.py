"""The ``clrnet`` command: everyday commands (``photos``), ``eval`` and ``bench`` (``evaluate``),
``train`` (``train``), assembled in ``main``."""
