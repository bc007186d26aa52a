"""The real attacks, one place: what an attacker's software does to a photo (``real``: the
catalogue ``REAL_ATTACKS`` the studies use) and the edits inside a photo (``edits``: splicing,
copy-move, inpainting). Evaluation and tests use these, never a training simulator."""
