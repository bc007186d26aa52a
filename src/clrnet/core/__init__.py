"""The ground floor, importing nothing else of clrnet: boxes and resizing (``geometry``), image
conversions and statistics (``image``), the JND map (``jnd``), metrics (``metrics``), memory."""
