"""Render stage."""
