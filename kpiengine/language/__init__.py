"""Language stage."""
