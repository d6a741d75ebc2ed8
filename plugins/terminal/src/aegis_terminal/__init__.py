"""aegis-terminal: shared PTY shells with command boundaries (see docs/terminal.md)."""
