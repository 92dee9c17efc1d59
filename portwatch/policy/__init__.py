"""Rules that turn a classified flow into findings."""
