"""Protecting a photo: the constants (``config``), the JND-shaped change (``embed``), the
fidelity guard (``fidelity``), the payload's margin check (``margin``) and secret keys (``key``)."""
