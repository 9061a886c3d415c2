"""Rules stage."""
