"""Versions and stamps of every ONNX file lutkan writes, defined in one place.

Pinned, never inherited from the installed onnx (``onnx.helper.make_model`` would default to the
newest IR/opset, which onnxruntime may not implement): default-domain opset 21, IR version 10
(the first with ``metadata_props`` on nodes/functions and function attribute defaults), and the
``lutkan`` domain at version 1. ``metadata_props`` keys are listed in ``METADATA_KEYS``.
"""

from __future__ import annotations

from lutkan.custom_ops.schema import OP_VERSION, TARGET_OPSET

__all__ = ["DOMAIN_VERSION", "FORMAT_VERSION", "IR_VERSION", "METADATA_KEYS", "PRODUCER_NAME", "TARGET_OPSET",
           "producer_version"]

IR_VERSION = 10
DOMAIN_VERSION = OP_VERSION

PRODUCER_NAME = "lutkan"
FORMAT_VERSION = 1
"""Version of the ONNX layout lutkan writes (names, metadata keys, op schema); bump on a change."""

METADATA_KEYS = (
    "lutkan.format_version",  # int, FORMAT_VERSION
    "lutkan.form",  # function | standard | custom
    "lutkan.contract",  # JSON ContractOptions.to_dict()
    "lutkan.base_fun",  # silu | identity | zero
    "lutkan.layers",  # JSON list: in, out_subnodes, nodes, segments, edges, n_sum, mult_groups, table_bytes
    "lutkan.table_dtype",  # int8 | uint8 | float16 | float32
    "lutkan.provenance",  # JSON provenance of the compiled model
    "lutkan.source_sha256",  # SHA-256 of the pykan source (from provenance), "" if unknown
    "lutkan.artifact_sha256",  # SHA-256 of the .lutkan bytes of the exported LUTModel
    "lutkan.notes",  # JSON list of compile notes
)


def producer_version() -> str:
    from lutkan._version import version

    return version()
