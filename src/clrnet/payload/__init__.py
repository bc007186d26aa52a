"""What the protection carries: a WebP thumbnail of the whole photo (``codec``),
framed and Reed-Solomon protected (``ecc``), convolutionally coded for soft
decoding (``inner``), and spread tile by tile over the frame (``channel``)."""
