"""Aegis Inbox: the core agent-to-agent tools."""
