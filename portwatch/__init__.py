"""portwatch: recognise the protocol from the bytes and report port misuse."""

__version__ = "0.1.0"
