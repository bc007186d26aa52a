"""Reading a received photo: the ruler proposes boxes, the pilots verify them, the payload is
decoded (``reader``, ``pilots``, ``decode``); protections beneath protections (``layers``);
dropped pixels put back first (``impulses``)."""
