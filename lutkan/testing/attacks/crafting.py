"""An attacker's toolbox: rewrite ``.lutkan`` containers and ONNX models consistently, and judge the outcome.

Containers are edited at the JSON/array level with every checksum recomputed (``split``/``rebuild``/``set_array``),
so only validation can object. ``reject`` and ``identical`` turn a case into its outcome or an AssertionError.
"""

from __future__ import annotations

import copy
import hashlib
import json
import struct
from collections.abc import Callable, Iterable

import numpy as np

from lutkan.artifact import MAGIC, to_bytes
from lutkan.errors import LutKanError

__all__ = ["FILE", "empty_layer", "empty_model", "identical", "init", "reject", "rebuild", "set_array", "set_init", "split",
           "with_arrays"]

FILE = "attack.lutkan"
"""The source name every crafted container is loaded under: error messages must name it."""


def reject(fn: Callable[[], object], error: type[BaseException] | tuple, *needles: str) -> tuple[str, str]:
    """``("rejected", message)`` if ``fn()`` raises ``error`` whose message contains every needle; otherwise an
    AssertionError (accepted, another exception type escaped, or the message does not name what it must)."""
    try:
        fn()
    except error as e:
        msg = str(e)
        missing = [n for n in needles if n not in msg]
        if missing:
            raise AssertionError(f"{type(e).__name__} does not name {missing}: {msg[:300]}") from None
        return "rejected", f"{type(e).__name__}: {msg}"
    except LutKanError as e:
        raise AssertionError(f"expected {error}, got {type(e).__name__}: {str(e)[:300]}") from None
    raise AssertionError("accepted: no error raised")


def identical(model, x: np.ndarray, *, include: Iterable[str] | None = None, what: str = "") -> tuple[str, str]:
    """``("identical", stats)`` if every backend of ``lutkan.testing.BACKENDS`` agrees with the NumPy reference on
    ``x`` (``assert_backends_agree``), else the oracle's AssertionError."""
    from lutkan.testing import assert_backends_agree

    stats = assert_backends_agree(model, x, include=include, what=what)
    worst = max((s["max_abs"] for s in stats.values()), default=0.0)
    return "identical", f"{len(stats)} backends, max abs difference {worst:.3g}"


def split(blob: bytes) -> tuple[dict, bytes]:
    """(header dict, arrays region) of a valid container."""
    (hlen,) = struct.unpack("<Q", blob[8:16])
    header = json.loads(blob[16 : 16 + hlen])
    start = 16 + hlen + ((-(16 + hlen)) % 64)
    return header, blob[start:-32]


def rebuild(header, region: bytes, *, raw_header: bytes | None = None, magic: bytes = MAGIC) -> bytes:
    """A container with ``header`` (or ``raw_header`` bytes) and ``region``, trailer checksum recomputed."""
    hb = raw_header if raw_header is not None else json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    head = magic + struct.pack("<Q", len(hb)) + hb
    head += b"\x00" * ((-len(head)) % 64)
    body = head + region
    return body + hashlib.sha256(body).digest()


def set_array(header: dict, region: bytes, key: str, arr: np.ndarray) -> tuple[dict, bytes]:
    """Replace array ``key``'s bytes (appended, 64-aligned) with its own checksum recomputed."""
    header = copy.deepcopy(header)
    data = np.ascontiguousarray(arr).tobytes()
    pad = (-len(region)) % 64
    off = len(region) + pad
    header["arrays"][key] = {"dtype": arr.dtype.name, "shape": list(arr.shape), "offset": off, "nbytes": len(data),
                             "sha256": hashlib.sha256(data).hexdigest()}
    return header, region + b"\x00" * pad + data


def with_arrays(model, edits: dict[str, np.ndarray]) -> bytes:
    """``to_bytes(model)`` with the arrays named in ``edits`` (``layers.0.knots``, ...) replaced consistently."""
    header, region = split(to_bytes(model))
    for key, arr in edits.items():
        header, region = set_array(header, region, key, arr)
    return rebuild(header, region)


def init(m, name: str) -> np.ndarray:
    """Initializer ``name`` of an ONNX model's main graph as an array."""
    from onnx import numpy_helper

    return numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == name)).copy()


def set_init(m, name: str, arr: np.ndarray) -> None:
    """Replace (or add) initializer ``name`` of the main graph."""
    from onnx import numpy_helper

    t = numpy_helper.from_array(np.ascontiguousarray(arr), name)
    for i, old in enumerate(m.graph.initializer):
        if old.name == name:
            m.graph.initializer[i].CopyFrom(t)
            return
    m.graph.initializer.append(t)


def empty_layer(I: int, K: int, O: int, L: int, scheme: str = "int8"):
    """A valid ``LUTLayer`` with no edges: I inputs (K segments on [-1, 1]), O outputs, biases 0. Tiny in a file,
    while its runtime layout (dense I*K*L*O) is as large as its declared sizes make it."""
    from lutkan.artifact import LUTLayer
    from lutkan.contract import TABLE_DTYPES

    z = np.zeros
    quant = scheme in ("int8", "uint8")
    return LUTLayer(knots=np.tile(np.linspace(-1, 1, K + 1, dtype=np.float32), (I, 1)),
                    edge_src=z(0, np.int32), edge_dst=z(0, np.int32), table=z((0, K, L), TABLE_DTYPES[scheme]),
                    scale=z((0, K), np.float32) if quant else None,
                    offset=z((0, K), np.float32) if scheme == "uint8" else None,
                    base_weight=z((I, O), np.float32), subnode_scale=np.ones(O, np.float32),
                    subnode_bias=z(O, np.float32), node_scale=np.ones(O, np.float32), node_bias=z(O, np.float32),
                    n_sum=O, mult_groups=(), tab_error=z(0, np.float32))


def empty_model(layers: int, I: int = 1, K: int = 1, O: int = 1, L: int = 2, scheme: str = "int8"):
    """A ``LUTModel`` of ``layers`` empty layers (``empty_layer``; the first has I inputs, the others O)."""
    from lutkan.artifact import LUTModel
    from lutkan.contract import ContractOptions

    ls = tuple(empty_layer(I if l == 0 else O, K, O, L, scheme) for l in range(layers))
    return LUTModel(layers=ls, contract=ContractOptions(L=L, scheme=scheme), base_fun="silu",
                    input_id=np.arange(I, dtype=np.int64), n_inputs=I)
