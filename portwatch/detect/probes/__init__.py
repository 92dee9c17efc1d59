"""Structural parsers: bytes in, facts out. Each module exposes probe(data, from_client) -> ProbeResult."""
