"""Client addresses a report keeps per entry (a finding line, a server), bounded per entry and over
all entries: a busy server has a client per flow, a scan a server per flow."""

from __future__ import annotations


def keep_client(clients: set[str], address: str, held: int, per_entry: int, overall: int) -> int | None:
    """Adds `address` to one entry's `clients` within both bounds. Returns the addresses held over all
    entries afterwards (`held` before), or None when a new address was left out: the entry's count is
    then a lower bound."""
    if len(clients) < per_entry and held < overall:
        before = len(clients)
        clients.add(address)
        return held + len(clients) - before
    return held if address in clients else None
