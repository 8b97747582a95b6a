"""The installed lutkan version, read once from the package metadata (pyproject's ``version``)."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version

UNKNOWN = "0+unknown"


@cache
def version() -> str:
    """``importlib.metadata.version("lutkan")``, or ``"0+unknown"`` when lutkan runs from a source tree
    that is not installed (no distribution metadata to read)."""
    try:
        return _dist_version("lutkan")
    except PackageNotFoundError:
        return UNKNOWN


__all__ = ["UNKNOWN", "version"]
