"""A record's `meta` read back from the JSON text an output holds (the CSV, SQLite and Parquet
`meta` column): the core parses it into its own map, which a frame converts in one step
(`frames._safe_meta`), where `json.loads` and then a walk over its dict took most of a read."""

from __future__ import annotations

import json
from typing import Any

from .. import _core


def meta_of_json(text: str | None) -> Any:
    """The facts in `text` (empty: none) as a `_core.Meta`, or as `json.loads` gives them where
    Python's parser must read the text (NaN, integers past 64 bits...: `_core.Meta.from_json`)."""
    if not text:
        return {}
    meta = _core.Meta.from_json(text)
    return json.loads(text) if meta is None else meta
