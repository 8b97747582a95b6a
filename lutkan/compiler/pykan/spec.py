"""Pure structure parsing shared by the checkpoint and live readers (no torch).

From pykan's ``width`` and ``mult_arity`` to the multiplication groups of each layer, per-layer ``k``
and ``grid`` values, and the assembly of one :class:`~lutkan.source.SourceLayer` from float64 arrays
with every shape checked against the width and every symbolic name checked against
:data:`lutkan.symbolic.SYMBOLIC_FUNS`. Each parser takes the error class to raise (``CheckpointError``
for files, ``UnsupportedModelError`` for live models) and a ``where`` prefix naming the source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lutkan.errors import UnsupportedModelError
from lutkan.source import SourceLayer
from lutkan.symbolic import SYMBOLIC_FUNS

BASE_FUNS = ("silu", "identity", "zero")


@dataclass
class ModelSpec:
    """The network structure read from a checkpoint config."""

    width: list[list[int]]
    groups: list[tuple[int, ...]]  # per layer l: the mult groups of its output nodes
    base_fun: str
    symbolic_enabled: bool


def as_count(v, what: str, err, where: str) -> int:
    """``v`` as a non-negative int (bools refused); raises ``err`` naming ``what`` otherwise."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 0:
        raise err(f"{where}: {what} must be a non-negative integer, got {v!r}")
    return int(v)


def parse_width(width, err, where: str) -> list[list[int]]:
    """pykan's ``width`` (entries ``n`` or ``[n_sum, n_mult]``) as ``[[n_sum, n_mult], ...]``."""
    if not isinstance(width, (list, tuple)) or len(width) < 2:
        raise err(f"{where}: width must be a list of at least 2 layer sizes, got {width!r}")
    out = []
    for l, w in enumerate(width):
        if isinstance(w, (list, tuple)):
            if len(w) != 2:
                raise err(f"{where}: width[{l}] must be n or [n_sum, n_mult], got {w!r}")
            out.append([as_count(w[0], f"width[{l}][0]", err, where), as_count(w[1], f"width[{l}][1]", err, where)])
        else:
            out.append([as_count(w, f"width[{l}]", err, where), 0])
    return out


def check_mult_width(width: list[list[int]], node_bias_shapes: dict, err, where: str, state_name: str) -> None:
    """Each multiplication entry ``n_mult`` of ``width`` against the shape of its ``node_bias_{l-1}`` tensor (at
    least n_mult nodes), before ``mult_groups`` builds anything from it: a config can declare 10**8
    multiplication nodes in a few bytes. (The full shape checks follow in ``assemble_layer``.)"""
    for l in range(1, len(width)):
        shape = node_bias_shapes.get(f"node_bias_{l - 1}")
        n_nodes = shape[0] if shape is not None and len(shape) == 1 else 0
        if width[l][1] > n_nodes:
            raise err(f"{where}: width[{l}] = {width[l]} declares {width[l][1]} multiplication nodes but {state_name}: "
                      f"node_bias_{l - 1} has shape {shape}; the config and the state do not belong to the same model")


def mult_groups(width: list[list[int]], mult_arity, err, where: str) -> list[tuple[int, ...]]:
    """Per layer l (0-based), the arities of the multiplication nodes of width[l+1] (pykan forward)."""
    groups = []
    homo = isinstance(mult_arity, (int, np.integer)) and not isinstance(mult_arity, bool)
    if not homo:
        if not isinstance(mult_arity, (list, tuple)) or len(mult_arity) != len(width):
            raise err(f"{where}: mult_arity must be an int or one list of arities per width entry "
                      f"({len(width)} lists), got {mult_arity!r}")
    for l in range(1, len(width)):
        n_mult = width[l][1]
        if homo:
            g = (int(mult_arity),) * n_mult
        else:
            a = mult_arity[l]
            if not isinstance(a, (list, tuple)) or len(a) != n_mult:
                raise err(f"{where}: mult_arity[{l}] = {a!r} must list one arity per multiplication node "
                          f"of width[{l}] ({n_mult} nodes)")
            g = tuple(as_count(x, f"mult_arity[{l}]", err, where) for x in a)
        if any(x < 2 for x in g):
            raise UnsupportedModelError(f"{where}: layer {l - 1} has a multiplication node of arity < 2 "
                                        f"({g}); pykan's forward does not support it")
        groups.append(g)
    return groups


def width_in(width) -> list[int]:
    """Per width entry, the number of nodes a layer reads (``n_sum + n_mult``)."""
    return [n + m for n, m in width]


def per_layer(value, depth: int, name: str, err, where: str) -> list[int] | None:
    """A config value given once or per layer (``k``, ``grid``) as one count per layer, or None if absent."""
    if value is None:
        return None
    vals = list(value) if isinstance(value, (list, tuple)) else [value] * depth
    if len(vals) != depth:
        raise err(f"{where}: {name} lists {len(vals)} values for {depth} layers")
    return [as_count(v, name, err, where) for v in vals]


def assemble_layer(l: int, arrs: dict, names, k_cfg: int | None, g_cfg: int | None, width, groups,
                   err, label: dict) -> tuple[SourceLayer, int, int]:
    """Check the float64 arrays of layer ``l`` against ``width`` and build it.

    Args:
        l: the layer index.
        arrs: field -> float64 array (grid, coef, scale_base, scale_sp, mask, sym_mask, sym_affine,
            subnode_scale, subnode_bias, node_scale, node_bias).
        names: the symbolic names ``[out][in]`` or None (then no edge may be symbolic).
        k_cfg, g_cfg: the spline order and grid size the config states, or None.
        width, groups: from :func:`parse_width` and :func:`mult_groups`.
        err: the error class for a mismatch.
        label: field (and ``"names"``) -> display name used in messages.

    Returns:
        (layer, k, G) with k and G derived from the tensor shapes.
    """
    win = width_in(width)
    I = win[l]
    n_sum = width[l + 1][0]
    O = n_sum + sum(groups[l])
    n_nodes = win[l + 1]

    def need(field, shape_ok, want):
        got = tuple(arrs[field].shape)
        if not shape_ok(got):
            raise err(f"{label[field]} has shape {got} but the width {fmt_width(width)} needs {want}; "
                      f"the config and the state do not belong to the same model")

    grid = arrs["grid"]
    need("grid", lambda s: len(s) == 2 and s[0] == I, f"({I}, G+2k+1) ({I} rows = inputs of layer {l})")
    coef = arrs["coef"]
    need("coef", lambda s: len(s) == 3 and s[:2] == (I, O), f"({I}, {O}, G+k)")
    k = grid.shape[1] - coef.shape[2] - 1
    G = grid.shape[1] - 1 - 2 * k
    if k < 0 or G < 1:
        raise err(f"{label['grid']} has {grid.shape[1]} knots per row and {label['coef']} {coef.shape[2]} "
                  f"coefficients per edge: not a B-spline of any order k >= 0 with G >= 1 intervals")
    if k_cfg is not None and k_cfg != k:
        raise err(f"layer {l}: the config says k={k_cfg} but the tensors have k={k} "
                  f"({label['grid']}: {grid.shape[1]} knots, {label['coef']}: {coef.shape[2]} coefficients)")
    if g_cfg is not None and g_cfg != G:
        raise err(f"layer {l}: the config says grid={g_cfg} but {label['grid']} has G={G} intervals "
                  f"({grid.shape[1]} knots with k={k})")
    for field in ("scale_base", "scale_sp", "mask"):
        need(field, lambda s: s == (I, O), f"({I}, {O})")
    need("sym_mask", lambda s: s == (O, I), f"({O}, {I})")
    need("sym_affine", lambda s: s == (O, I, 4), f"({O}, {I}, 4)")
    need("subnode_scale", lambda s: s == (O,), f"({O},)")
    need("subnode_bias", lambda s: s == (O,), f"({O},)")
    need("node_scale", lambda s: s == (n_nodes,), f"({n_nodes},)")
    need("node_bias", lambda s: s == (n_nodes,), f"({n_nodes},)")
    sym_names = check_names(l, names, O, I, arrs["sym_mask"], err, label["names"])
    layer = SourceLayer(
        grid=grid, coef=coef, k=int(k), scale_base=arrs["scale_base"], scale_sp=arrs["scale_sp"],
        mask=arrs["mask"], sym_mask=arrs["sym_mask"], sym_affine=arrs["sym_affine"], sym_names=sym_names,
        subnode_scale=arrs["subnode_scale"], subnode_bias=arrs["subnode_bias"],
        node_scale=arrs["node_scale"], node_bias=arrs["node_bias"], n_sum=int(n_sum),
        mult_groups=tuple(int(g) for g in groups[l]))
    return layer, int(k), int(G)


def check_names(l, names, O, I, sym_mask, err, where) -> tuple[tuple[str, ...], ...]:
    """The ``[O][I]`` symbolic names as tuples; unknown names raise UnsupportedModelError naming the edge."""
    if names is None:
        if np.any(sym_mask != 0):
            j, i = (int(v) for v in np.argwhere(sym_mask != 0)[0])
            raise err(f"{where}: no symbolic function names for layer {l}, but edge ({i}, {j}) is symbolic")
        return tuple(("0",) * I for _ in range(O))
    if (not isinstance(names, (list, tuple)) or len(names) != O
            or any(not isinstance(r, (list, tuple)) or len(r) != I for r in names)):
        raise err(f"{where}: symbolic names of layer {l} must be a [{O}][{I}] list ([out][in])")
    out = []
    for j, row in enumerate(names):
        for i, name in enumerate(row):
            if not isinstance(name, str) or name not in SYMBOLIC_FUNS:
                active = "an active" if sym_mask[j, i] != 0 else "an inactive"
                raise UnsupportedModelError(
                    f"{where}: layer {l}, edge ({i}, {j}) ({active} symbolic edge) uses symbolic function "
                    f"{name!r}, which is not in pykan's SYMBOLIC_LIB as lutkan knows it (known: "
                    f"{', '.join(sorted(SYMBOLIC_FUNS))}); fix_symbolic it with a known name or "
                    f"unfix_symbolic it")
        out.append(tuple(row))
    return tuple(out)


def fmt_width(width) -> str:
    """A parsed width written as pykan spells it, e.g. ``[4, [3, 1], 7]``."""
    return "[" + ", ".join(str(n) if m == 0 else f"[{n}, {m}]" for n, m in width) + "]"
