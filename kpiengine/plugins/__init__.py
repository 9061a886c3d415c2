"""Plugins stage."""
