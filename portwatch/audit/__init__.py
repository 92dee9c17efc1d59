"""Host audit: what a host offers (inetd, xinetd, listening sockets), as whom, and on which port.

The network view (`analyze`) shows what a host speaks; this package shows what it offers. Parsers
here are pure (text in, facts out); `host` does the file and /proc reading, `prober` the only
network I/O (loopback connections), `rules` turns the facts into findings of the shared catalogue.
"""
