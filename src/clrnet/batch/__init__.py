"""Batches of photos: in this process with threads (``local``) or on Ray Data (``ray``, extra
``scale``)."""
