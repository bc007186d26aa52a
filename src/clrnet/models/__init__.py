"""Models behind one protocol (``base``): the designed protection (``designed``, clrnet-v2), the
paper's CLR-Net (``paper``), and the zoo that loads them by name (``zoo``)."""
