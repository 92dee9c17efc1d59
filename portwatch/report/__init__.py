"""Sinks for flow records and findings."""
