"""Live monitoring of mirror ports: `portwatch monitor` (command.py is the entry point)."""
