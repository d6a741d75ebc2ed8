"""Aegis TUI."""
