"""Exception hierarchy of lutkan.

Every error a user can trigger with bad input is a :class:`LutKanError`; messages name the
thing (layer, edge ``(i, j)``, input name, file) and the offending value, and say what to do.
"""

from __future__ import annotations


class LutKanError(Exception):
    """Base class of every error lutkan raises on purpose."""


class UnsupportedModelError(LutKanError):
    """The source model uses something the compiler cannot represent (names layer/edge and why)."""


class CheckpointError(LutKanError):
    """A pykan checkpoint is missing, unreadable, unsafe or inconsistent."""


class ArtifactError(LutKanError):
    """A ``.lutkan`` file is truncated, tampered, of the wrong version or inconsistent."""


class ExportError(LutKanError):
    """An artifact cannot be lowered to the requested ONNX form."""


class InputError(LutKanError, ValueError):
    """An inference input has the wrong rank, width, dtype or batch size."""


class OnnxModelError(LutKanError):
    """An ``.onnx`` file (or its LUTKanEdge nodes) is malformed or not a lutkan export."""


class ResourceLimitError(LutKanError):
    """An operation would allocate more than the resource budget (``lutkan.budget``) allows."""
