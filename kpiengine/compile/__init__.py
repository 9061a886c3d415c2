"""Compile stage."""
