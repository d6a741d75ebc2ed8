"""Aegis Budget: rolling per-queue spend ceilings (USD, output tokens), checked at enqueue."""
