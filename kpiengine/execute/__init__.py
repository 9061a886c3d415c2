"""Execute stage."""
