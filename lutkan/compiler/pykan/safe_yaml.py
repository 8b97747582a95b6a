"""The restricted YAML loader for pykan ``*_config.yml`` files (untrusted input).

A ``yaml.SafeLoader`` subclass that understands exactly the few Python tags pykan's ``saveckpt``
really writes: NumPy scalars (decoded from their dtype string and raw bytes, never by calling a
constructor), ``!!python/tuple``, and the ``nn.SiLU``/``nn.Identity`` objects (and the ``zero``
lambda) that ``prune_input`` leaks into ``base_fun_name``. Every other ``!!python/...`` tag, and any
alias of a list/mapping ("billion laughs"), is refused with :class:`~lutkan.errors.CheckpointError`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from lutkan.errors import CheckpointError

_YAML_PY = "tag:yaml.org,2002:python/"
_NUMPY_SCALAR_TAGS = (
    _YAML_PY + "object/apply:numpy.core.multiarray.scalar",
    _YAML_PY + "object/apply:numpy._core.multiarray.scalar",
)
_NUMPY_DTYPE_TAG = _YAML_PY + "object/apply:numpy.dtype"
_TUPLE_TAG = _YAML_PY + "tuple"
# prune_input passes the base_fun *object* to MultKAN, so saveckpt dumps it as an object/name tag.
# These nodes are mapped to the pykan name without constructing anything (children are ignored).
_BASE_FUN_TAGS = {
    _YAML_PY + "object:torch.nn.modules.activation.SiLU": "silu",
    _YAML_PY + "object:torch.nn.modules.linear.Identity": "identity",
    _YAML_PY + "name:kan.MultKAN.<lambda>": "zero",  # base_fun='zero' is a lambda in MultKAN.__init__
    _YAML_PY + "name:kan.MultKAN.%3Clambda%3E": "zero",
}
_DTYPE_STR = re.compile(r"^[<>|=]?[biufc]\d{1,2}$")


class _YamlRefused(Exception):
    """Raised inside the YAML loader; re-raised as CheckpointError naming the file."""


@dataclass(frozen=True)
class _DecodedDtype:
    dtype: np.dtype


class _CheckpointYamlLoader(yaml.SafeLoader):
    """SafeLoader + the numpy-scalar / tuple / base_fun tags pykan writes; refuses other python tags."""

    def compose_node(self, parent, index):
        # An alias of a list/mapping shares it: nested, they expand exponentially in any repr or walk
        # ("billion laughs"). yaml.dump only aliases the numpy dtype shared by numpy scalars (a leaf
        # once constructed), so every other alias of a list/mapping is refused.
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = self.anchors.get(event.anchor)
            if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)) and node.tag != _NUMPY_DTYPE_TAG:
                raise _YamlRefused(f"refused YAML alias *{event.anchor} of a list/mapping at line "
                                   f"{event.start_mark.line + 1} (pykan configs have none)")
        return super().compose_node(parent, index)


def _yaml_tuple(loader, node):
    if not isinstance(node, yaml.SequenceNode):
        raise _YamlRefused(f"malformed !!python/tuple at line {node.start_mark.line + 1}")
    return tuple(loader.construct_sequence(node, deep=True))


def _yaml_numpy_dtype(loader, node):
    where = f"line {node.start_mark.line + 1}"
    if isinstance(node, yaml.MappingNode):
        d = loader.construct_mapping(node, deep=True)
        args, state = d.get("args"), d.get("state")
    elif isinstance(node, yaml.SequenceNode):
        args, state = loader.construct_sequence(node, deep=True), None
    else:
        raise _YamlRefused(f"malformed numpy dtype tag at {where}")
    if not isinstance(args, (list, tuple)) or not args or not isinstance(args[0], str):
        raise _YamlRefused(f"malformed numpy dtype arguments at {where}: {args!r}")
    spec = args[0]
    if not _DTYPE_STR.match(spec):
        raise _YamlRefused(f"refused numpy dtype {spec!r} at {where}: only bool/int/uint/float/complex "
                           f"scalars are decoded")
    dt = np.dtype(spec)
    if isinstance(state, (list, tuple)) and len(state) > 1 and state[1] in ("<", ">"):
        dt = dt.newbyteorder(state[1])
    return _DecodedDtype(dt)


def _yaml_numpy_scalar(loader, node):
    where = f"line {node.start_mark.line + 1}"
    if not isinstance(node, yaml.SequenceNode):
        raise _YamlRefused(f"malformed numpy scalar at {where}")
    args = loader.construct_sequence(node, deep=True)
    if len(args) != 2 or not isinstance(args[0], _DecodedDtype) or not isinstance(args[1], bytes):
        raise _YamlRefused(f"malformed numpy scalar at {where}: expected [dtype, bytes]")
    dt = args[0].dtype
    if len(args[1]) != dt.itemsize:
        raise _YamlRefused(f"numpy scalar at {where}: {len(args[1])} bytes for dtype {dt.str}")
    return np.frombuffer(args[1], dtype=dt, count=1)[0].item()  # a plain Python bool/int/float/complex


def _yaml_refuse(loader, suffix, node):
    raise _YamlRefused(f"refused YAML tag !!python/{suffix} at line {node.start_mark.line + 1} "
                       f"(only numpy scalars, tuples and pykan's base_fun objects are allowed)")


for _tag in _NUMPY_SCALAR_TAGS:
    _CheckpointYamlLoader.add_constructor(_tag, _yaml_numpy_scalar)
_CheckpointYamlLoader.add_constructor(_NUMPY_DTYPE_TAG, _yaml_numpy_dtype)
_CheckpointYamlLoader.add_constructor(_TUPLE_TAG, _yaml_tuple)
for _tag, _name in _BASE_FUN_TAGS.items():
    _CheckpointYamlLoader.add_constructor(_tag, lambda loader, node, _n=_name: _n)
_CheckpointYamlLoader.add_multi_constructor(_YAML_PY, _yaml_refuse)


def _unparsable(data: bytes) -> str:
    """``key 'width' (line 12) holds a 5000-digit number that`` for the first over-long number, else generic."""
    m = re.search(rb"\d{4000,}", data)
    if m is None:
        return "the config holds a value"
    keys = list(re.finditer(rb"^([^\s:#][^:\n]*):", data[: m.start()], re.M))
    key = keys[-1].group(1).decode("utf-8", "replace") if keys else "?"
    line = data.count(b"\n", 0, m.start()) + 1
    return f"key {key!r} (line {line}) holds a {m.end() - m.start()}-digit number that"


def parse_config(data: bytes, path: Path) -> dict:
    """Parse config bytes read from ``path`` with the restricted loader.

    Returns:
        The config mapping as plain Python data (NumPy scalars become Python numbers).
    Raises:
        CheckpointError: invalid YAML, a refused tag or alias, or not a mapping (naming ``path``).
    """
    try:
        loader = _CheckpointYamlLoader(data)  # the reader decodes and checks the first bytes already
    except yaml.YAMLError as e:
        raise CheckpointError(f"{path}: not valid YAML: {e}") from None
    try:
        cfg = loader.get_single_data()
    except _YamlRefused as e:
        raise CheckpointError(f"{path}: {e}; the config is not a plain pykan saveckpt file") from None
    except yaml.constructor.ConstructorError as e:
        raise CheckpointError(f"{path}: refused YAML content: {e.problem} "
                              f"(line {e.problem_mark.line + 1 if e.problem_mark else '?'})") from None
    except yaml.YAMLError as e:
        raise CheckpointError(f"{path}: not valid YAML: {e}") from None
    except RecursionError:
        raise CheckpointError(f"{path}: not valid YAML: nested too deeply") from None
    except (ValueError, OverflowError) as e:  # e.g. an integer of more digits than Python converts
        raise CheckpointError(f"{path}: {_unparsable(data)} Python refuses to parse ({e})") from None
    finally:
        loader.dispose()
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path}: expected a YAML mapping (pykan saveckpt config), got {type(cfg).__name__}")
    return cfg


def read_checkpoint_config(path: str | os.PathLike) -> dict:
    """Read a pykan ``*_config.yml`` safely, accepting only the tags listed in the module docstring.

    Args:
        path: the ``ID_config.yml`` file.
    Returns:
        The config as plain Python data (NumPy scalars become Python numbers).
    Raises:
        CheckpointError: unreadable file, invalid YAML or a refused tag (named in the message).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{p}: cannot read the config file: {e.strerror or e}") from None
    return parse_config(data, p)
