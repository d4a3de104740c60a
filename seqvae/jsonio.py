"""JSON that every reader accepts: a value that is not a finite number (a metric undefined
for the data, a NaN R^2) is written as null, never as the NaN / Infinity tokens Python's json
module emits by default and strict parsers (jq, JavaScript, most JSON libraries) refuse."""

from __future__ import annotations

import json
import math
from typing import Any


def finite_or_none(value: Any) -> Any:
    """value with every float that is NaN or infinite, at any depth, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / torch scalars
        return finite_or_none(value.item())
    return value


def dumps(value: Any, **options: Any) -> str:
    """json.dumps with non-finite numbers as null (strict JSON)."""
    return json.dumps(finite_or_none(value), allow_nan=False, **options)
