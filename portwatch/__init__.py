"""portwatch: recognise the protocol from the bytes and report port misuse."""

__version__ = "0.1.0"

__all__ = ["Analysis", "__version__", "analyze", "read"]


def __getattr__(name: str) -> object:
    # Lazy: the CLI imports this package too and must not pay for importing pandas.
    if name in ("Analysis", "analyze", "read"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'portwatch' has no attribute {name!r}")
