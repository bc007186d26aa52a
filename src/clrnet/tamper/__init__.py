"""Tampering: where a protected photo was edited (``localize``) and the real edits the
evaluation and the tests apply (``edits``)."""
