"""Aegis Canvas: shared markdown documents agents co-author section by section."""
