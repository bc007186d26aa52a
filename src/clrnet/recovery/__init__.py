"""Recovery of the whole frame from the kept part and the decoded payload."""
