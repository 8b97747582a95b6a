"""Column selection: ``--columns`` specs by name, 0-based index or ``START:STOP`` range.

A spec is a comma-separated list of tokens, resolved in order against the input's columns:

* a column name (exact, case-sensitive) — a token equal to a column name is always that name;
* a 0-based integer index (negative counts from the end, as in Python);
* a range ``START:STOP`` (stop excluded; either side may be empty: ``:78``, ``2:``), each side an index
  or a name (a name as STOP is included: ``dur:bytes`` selects ``dur`` through ``bytes``).

``None`` (no spec) selects every column. A column may not be selected twice.
"""

from __future__ import annotations

from lutkan.errors import LutKanError


class ColumnError(LutKanError):
    """A ``--columns`` spec does not match the input's columns (names the token and what exists)."""


def _preview(names: list[str] | None, n: int) -> str:
    if names is None:
        return f"{n} unnamed columns (indices 0..{n - 1})"
    shown = ", ".join(repr(c) for c in names[:8])
    return f"{n} columns: {shown}{', ...' if n > 8 else ''}"


def _index(token: str, names: list[str] | None, n: int, *, stop: bool = False) -> int:
    """Position of ``token`` (name or integer) among ``n`` columns; a name as ``stop`` is inclusive."""
    if names is not None and token in names:
        return names.index(token) + (1 if stop else 0)
    try:
        i = int(token)
    except ValueError:
        if names is None:
            raise ColumnError(f"column {token!r}: this input has no column names ({_preview(names, n)}); "
                              "select columns by 0-based index") from None
        raise ColumnError(f"no column named {token!r}; the input has {_preview(names, n)}") from None
    j = i + n if i < 0 else i
    if not (0 <= j < n or (stop and j == n)):
        raise ColumnError(f"column index {i} is out of range; the input has {_preview(names, n)}")
    return j


def resolve_columns(spec: str | None, names: list[str] | None, n_columns: int) -> list[int]:
    """The 0-based column indices selected by ``spec`` among ``n_columns`` (``names`` or None).

    Raises:
        ColumnError: empty spec, unknown name, index out of range, empty range or a repeated column.
    """
    if spec is None:
        return list(range(n_columns))
    out: list[int] = []
    tokens = [t.strip() for t in spec.split(",")]
    if not any(tokens):
        raise ColumnError(f"--columns {spec!r} selects no column")
    for tok in tokens:
        if not tok:
            raise ColumnError(f"--columns {spec!r} has an empty item")
        if ":" in tok and not (names is not None and tok in names):
            a, _, b = tok.partition(":")
            lo = _index(a.strip(), names, n_columns) if a.strip() else 0
            hi = _index(b.strip(), names, n_columns, stop=True) if b.strip() else n_columns
            if hi <= lo:
                raise ColumnError(f"--columns range {tok!r} is empty (columns {lo} to {hi - 1})")
            out.extend(range(lo, hi))
        else:
            out.append(_index(tok, names, n_columns))
    seen: set[int] = set()
    for i in out:
        if i in seen:
            label = repr(names[i]) if names is not None else str(i)
            raise ColumnError(f"--columns {spec!r} selects column {label} twice")
        seen.add(i)
    return out


def describe(indices: list[int], names: list[str] | None) -> str:
    """A short human description of a selection, e.g. ``78 columns 'f0'..'f77'``."""
    if names is None:
        label = [str(i) for i in indices]
    else:
        label = [repr(names[i]) for i in indices]
    if len(indices) <= 4:
        return f"{len(indices)} column{'s' if len(indices) != 1 else ''} {', '.join(label)}"
    return f"{len(indices)} columns {label[0]}..{label[-1]}"


__all__ = ["ColumnError", "describe", "resolve_columns"]
