"""Files: reading users' photos safely, their metadata, the output formats, and batches of inputs."""
