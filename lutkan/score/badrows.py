"""Bad rows: what they are, the policies for them, the error and the report file.

A row is *bad* when it cannot be turned into the model's input without guessing: a CSV line with the wrong
number of fields, a selected value that is empty, missing (Parquet null) or not a number. NaN and ±inf
written as numbers (``nan``, ``inf``, ``-inf``) are *not* bad: they are inputs with a defined result
(docs/contract.md). Bad rows are never scored. Policies (``lutkan score --on-bad-rows``):

* ``fail`` (default): stop at the first chunk that has one; the error lists up to ``SHOW`` of its bad rows
  (row number, CSV line, reason) and no output file is left behind. Exit code 3.
* ``skip``: leave them out of the output, list every one in the report file; CSV/Parquet outputs then get a
  ``row`` column (the 0-based input row) so each score stays attached to its row.
* ``nan``: write a row of NaN in their place (output row i is input row i), list every one in the report.

Row numbers are 0-based data rows (the header is not a row), the same numbering as the output rows;
for CSV the 1-based line number in the file is given too.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from lutkan.errors import InputError

POLICIES = ("fail", "skip", "nan")
SHOW = 10


@dataclass(frozen=True)
class BadRow:
    """One bad row: ``row`` 0-based data row (local to its chunk until the engine offsets it), why."""

    row: int
    reason: str

    def shifted(self, offset: int) -> BadRow:
        return BadRow(self.row + offset, self.reason)


def describe(b: BadRow, line_of) -> str:
    """``row 12 (line 14): 3 fields, expected 78`` (the line only for inputs that have lines)."""
    line = line_of(b.row)
    return f"row {b.row}{f' (line {line})' if line is not None else ''}: {b.reason}"


class BadRowsError(InputError):
    """The input has bad rows and the policy is ``fail`` (the message lists the first ones)."""

    def __init__(self, path: str, rows: list[BadRow], line_of):
        shown = rows[:SHOW]
        lines = "\n".join(f"  {describe(b, line_of)}" for b in shown)
        extra = len(rows) - len(shown)
        tail = f"\n  ... and {extra} more in this chunk" if extra > 0 else ""
        super().__init__(f"{path}: bad rows, not scored (stopped at the first chunk that has any):\n{lines}{tail}\n"
                         "fix the input, or pass --on-bad-rows skip (leave them out) or --on-bad-rows nan "
                         "(NaN rows in their place); both write every bad row to a report file")
        self.rows = rows


class BadRowReport:
    """The report file: a CSV ``row,line,reason`` written as bad rows arrive (created on the first one)."""

    def __init__(self, path: Path, line_of):
        self.path = Path(path)
        self.line_of = line_of
        self.count = 0
        self.first: list[BadRow] = []
        self._f = None
        self._w = None

    def add(self, rows: list[BadRow]) -> None:
        if not rows:
            return
        if self._f is None:
            self._f = self.path.open("w", newline="")
            self._w = csv.writer(self._f)
            self._w.writerow(["row", "line", "reason"])
        for b in rows:
            line = self.line_of(b.row)
            self._w.writerow([b.row, "" if line is None else line, b.reason])
        self.count += len(rows)
        self.first.extend(rows[: max(0, SHOW - len(self.first))])

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def summary(self, policy: str) -> str:
        what = "left out of the output" if policy == "skip" else "written as NaN rows"
        first = "; ".join(describe(b, self.line_of) for b in self.first[:3])
        return f"{self.count} bad rows {what}, listed in {self.path} (first: {first})"


__all__ = ["POLICIES", "SHOW", "BadRow", "BadRowReport", "BadRowsError", "describe"]
