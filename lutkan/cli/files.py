"""What the command line reads and writes: file kinds, output paths, argument types, messages.

Every path problem is a ``LutKanError`` naming the path and what to do (exit 3); an argument outside
its range is an ``argparse.ArgumentTypeError`` (usage error, exit 2). File kinds are recognised by
content where there is one (the ``.lutkan`` magic) and by case-insensitive extension otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lutkan import contract as C
from lutkan.errors import LutKanError

ONNX_SUFFIX, LUTKAN_SUFFIX = ".onnx", ".lutkan"


def is_onnx_path(path: str | os.PathLike) -> bool:
    """True for a ``*.onnx`` path, any letter case (``MODEL.ONNX``)."""
    return Path(path).suffix.lower() == ONNX_SUFFIX


def is_lutkan_file(path: str | os.PathLike) -> bool:
    """True when ``path`` is a regular file starting with the ``.lutkan`` magic."""
    from lutkan.artifact import MAGIC

    p = Path(path)
    if not p.is_file():
        return False
    with p.open("rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def require_file(path: str, what: str) -> Path:
    """``path`` as a Path; a ``LutKanError`` naming it when it is missing or not a regular file."""
    p = Path(path)
    if not p.exists():
        raise LutKanError(f"{path}: no such file ({what})")
    if not p.is_file():
        raise LutKanError(f"{path}: not a regular file ({what})")
    return p


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "folder"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISFIFO, "named pipe"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def _same_file(a: Path, b: str | os.PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path: str, *inputs: str | os.PathLike | None, what: str = "output") -> Path:
    """Refuse an output path the command must not write: a missing folder, an existing non-regular file
    (a device, folder or pipe would be replaced by a regular file), or one of the command's inputs.

    Raises:
        LutKanError: naming the path and what to do.
    """
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise LutKanError(f"cannot write the {what} {path}: the folder {parent} does not exist (create it first)")
    if p.exists() or p.is_symlink():
        try:
            mode = p.stat().st_mode
        except OSError as e:
            raise LutKanError(f"cannot write the {what} {path}: {e.strerror or e}") from None
        if not stat.S_ISREG(mode):
            raise LutKanError(f"cannot write the {what} {path}: it exists and is a {_kind(mode)}, not a regular "
                              f"file; choose another path")
        for inp in inputs:
            if inp is not None and _same_file(p, inp):
                raise LutKanError(f"cannot write the {what} {path}: it is this command's input {inp}; writing it "
                                  f"would destroy the input: choose another path")
    return p


def save_npy(y: np.ndarray, path: Path) -> None:
    """Write ``y`` as .npy to exactly ``path`` (no ``.npy`` appended), atomically."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, y, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise LutKanError(f"cannot write {path}: {e.strerror or e}") from None


def load_npy(path: str, what: str = "input") -> np.ndarray:
    """A .npy array (no pickles); a ``LutKanError`` naming the file otherwise."""
    require_file(path, f"{what} .npy")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise LutKanError(f"cannot read {what} {path!r} as a .npy array: {e}") from None


# ----------------------------------------------------------------------------- argument types


def arg_L(text: str) -> int:
    """``--L``: an integer the contract accepts (else a usage error with the contract's message)."""
    try:
        L = int(text)
        C.ContractOptions(L=L)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    except LutKanError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return L


def max_threads() -> int:
    """The most intra-op threads a command accepts: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - platforms without sched_getaffinity
        return max(1, os.cpu_count() or 1)


def arg_threads(text: str) -> int:
    """``--threads``: 1 .. the CPUs available (more only oversubscribes them)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    top = max_threads()
    if not 1 <= n <= top:
        raise argparse.ArgumentTypeError(f"{n} is out of range: use 1 to {top} (the CPUs available here)")
    return n


def arg_opset(text: str) -> int:
    """``--opset``: an integer (the exporter checks the range)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


# ----------------------------------------------------------------------------- messages

_CLI_WORDS: tuple[tuple[re.Pattern, str], ...] = tuple((re.compile(p), r) for p, r in (
    (r"make_session\(\.\.\., plugin=True\)", "--plugin"),
    (r"plugin=True", "--plugin"),
    (r"export form='(\w+)'/'(\w+)'", r"export with --form \1 or --form \2"),
    (r"\b(form|scheme|interp|boundary|oob|symbolic)='(\w+)'", r"--\1 \2"),
    (r"checkpoint_id=(\S+)", r"--checkpoint-id \1"),
    (r"\bcheckpoint_id\b", "--checkpoint-id"),
    (r"\bmax_error\b", "--max-error"),
))


def cli_text(msg: str) -> str:
    """A library message in command-line words: Python arguments become the flags that set them."""
    for pattern, repl in _CLI_WORDS:
        msg = pattern.sub(repl, msg)
    return msg


def warning_printer(command: str) -> Callable:
    """A ``warnings.showwarning`` that prints ``lutkan COMMAND: note: ...`` (flags, not Python arguments),
    each distinct message once."""
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        label = "note" if issubclass(category, UserWarning) else f"warning ({category.__name__})"
        text = f"lutkan {command}: {label}: {cli_text(str(message))}"
        if text not in seen:
            seen.add(text)
            print(text, file=sys.stderr)

    return show


__all__ = ["arg_L", "arg_opset", "arg_threads", "check_output", "cli_text", "is_lutkan_file", "is_onnx_path",
           "load_npy", "max_threads", "require_file", "save_npy", "warning_printer"]
