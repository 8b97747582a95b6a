"""A planted attack class for ``test_attacks.test_a_crash_fails_the_case_not_the_runner``: one good case, then a
case that kills the child with SIGSEGV (what the Numba kernel did on NaN indices before issue 14), or, with
``PLANT=memory``, one case that allocates past the child's memory limit."""

import ctypes
import os

import numpy as np


def _ok(info):
    return "rejected", "fine"


def _segfault(info):
    ctypes.string_at(0)  # reads address 0: SIGSEGV
    return "identical", "unreachable"


def _allocate(info):
    np.ones(1 << 31)  # 16 GiB
    return "identical", "unreachable"


CASES = [("exhaust", _allocate)] if os.environ.get("PLANT") == "memory" else [("rejected first", _ok),
                                                                              ("segfault", _segfault)]
