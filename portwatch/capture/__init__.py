"""Reassembly, flow table and decoding of captured frames."""
