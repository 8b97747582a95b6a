"""The native op's compute path: Numba ``@cfunc``s that onnxruntime calls directly (no Python, no GIL).

``compute(op_kernel, context) -> OrtStatus*`` is ``OrtCustomOp.KernelComputeV2``. ``op_kernel`` is a kernel
block built once at kernel creation by ``build_block``: an int64 header (the ``OrtApi`` entry addresses it
calls, the widths and contract flags, byte offsets of the arrays) followed by the layer's arrays, exactly
those of ``lutkan.evaluators.numba_eval.EdgeSumKernel``. Per call it reads ``X`` through the API, checks it
(rank 2, float32, width I; otherwise it returns an INVALID_ARGUMENT status naming the node), asks onnxruntime
for ``Y`` (N, O) and runs ``edge_sum``: the one adapter to the Numba evaluator's layer kernel. Batches of at
least ``SPLIT_ROWS`` rows are split into row blocks over onnxruntime's intra-op pool
(``KernelContext_ParallelFor``; with ``intra_op_num_threads=1`` the blocks run in turn on the calling
thread). Scratch is allocated per call: sessions may be run from many threads at once.

The block is ``calloc``-ed by the C forwarder and freed by it as the op's ``KernelDestroy``. The cfuncs are
compiled on first use (``compiled()``) and cached by Numba; because Numba's cache does not notice edits of
callees in other files, ``compiled()`` flushes this module's cache entries when ``lutkan/evaluators``
changed (a content hash kept next to the cache).
"""

from __future__ import annotations

import ctypes
import os
import threading

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from lutkan.evaluators.jit_cache import flush_stale
from lutkan.evaluators.lut_kernel import lut_layer_kernel

HEADER = 40
"""int64 slots before the arrays (fields ``H_*``)."""
(H_MAGIC, H_GET_INPUT, H_GET_OUTPUT, H_GET_TTS, H_GET_ELEM, H_GET_NDIM, H_GET_DIMS, H_REL_TTS, H_GET_DATA,
 H_CREATE_STATUS, H_PARALLEL_FOR, H_WORKER, H_I, H_K, H_L, H_O, H_INTERP, H_CLOSED, H_OOB, H_BASE, H_KNOTS,
 H_BOUNDS, H_SEG_SCALE, H_DENSE, H_BASE_W, H_EDGE_MASK, H_MSG, H_MSG_LEN, H_SPLIT_ROWS, H_MAX_BLOCKS, H_THREADS,
 H_PROBES, H_FAIL_MSG) = range(33)
MAGIC = 0x31306E616B74756C  # b"lutkan01"
_API_SLOTS = {H_GET_INPUT: "KernelContext_GetInput", H_GET_OUTPUT: "KernelContext_GetOutput",
              H_GET_TTS: "GetTensorTypeAndShape", H_GET_ELEM: "GetTensorElementType",
              H_GET_NDIM: "GetDimensionsCount", H_GET_DIMS: "GetDimensions",
              H_REL_TTS: "ReleaseTensorTypeAndShapeInfo", H_GET_DATA: "GetTensorMutableData",
              H_CREATE_STATUS: "CreateStatus", H_PARALLEL_FOR: "KernelContext_ParallelFor"}
SPLIT_ROWS = 512
"""Smallest row block handed to one pool thread."""
PROBES = 3
"""Large calls per kernel that measure how many pool threads run its blocks (see ``_compute``)."""
_STACK_GAP = 1 << 18  # two stack addresses further apart than this belong to different threads
_JOB = 6  # job record: block, x, y, N, blocks, failed blocks; then the stack address each block ran at
_ORT_FAIL, _ORT_INVALID_ARGUMENT = 1, 2

# ---------------------------------------------------------------------------------------------
# Calling C function pointers by address from Numba (an LLVM call through inttoptr; every argument is
# passed as a 64-bit integer: pointers and size_t are, and the one int argument, OrtErrorCode, travels in a
# register whose low half the callee reads on the x86-64 and AArch64 ABIs).

_I64 = ir.IntType(64)


def _codegen(n: int, void: bool):
    def codegen(context, builder, signature, args):
        vals = [context.cast(builder, v, t, types.int64) for v, t in zip(args, signature.args, strict=True)]
        fnty = ir.FunctionType(ir.VoidType() if void else _I64, [_I64] * n)
        res = builder.call(builder.inttoptr(vals[0], fnty.as_pointer()), vals[1:])
        return context.get_dummy_value() if void else res
    return codegen


def _ints(*tys) -> bool:
    return all(isinstance(t, types.Integer) for t in tys)


@intrinsic
def _call2(typingctx, fn, a, b):
    return (types.int64(fn, a, b), _codegen(2, False)) if _ints(fn, a, b) else None


@intrinsic
def _call3(typingctx, fn, a, b, c):
    return (types.int64(fn, a, b, c), _codegen(3, False)) if _ints(fn, a, b, c) else None


@intrinsic
def _call5(typingctx, fn, a, b, c, d, e):
    return (types.int64(fn, a, b, c, d, e), _codegen(5, False)) if _ints(fn, a, b, c, d, e) else None


@intrinsic
def _callv1(typingctx, fn, a):
    return (types.void(fn, a), _codegen(1, True)) if _ints(fn, a) else None


@intrinsic
def _stack_address(typingctx):
    """An address in the current stack frame (which thread's stack a block runs on)."""
    def codegen(context, builder, signature, args):
        return builder.ptrtoint(cgutils.alloca_once(builder, ir.IntType(8)), _I64)
    return types.int64(), codegen


@intrinsic
def _ptr(typingctx, address):
    def codegen(context, builder, signature, args):
        return builder.inttoptr(context.cast(builder, args[0], signature.args[0], types.int64), cgutils.voidptr_t)
    return (types.voidptr(address), codegen) if _ints(address) else None


# ---------------------------------------------------------------------------------------------
# The kernel.

@numba.njit(nogil=True, cache=True)
def edge_sum(x, knots, bounds, seg_scale, dense, base_w, edge_mask, L, interp, closed, oob, base, out):
    """``out = LUTKanEdge(x)``: the one call into ``lut_layer_kernel`` (a change of its signature is fixed
    here)."""
    lut_layer_kernel(x, knots, bounds, seg_scale, dense, base_w, edge_mask, L, interp, closed, oob, base, out)


@numba.njit(nogil=True, cache=True)
def _run_rows(block, x_addr, y_addr, a, b):
    """Rows [a, b) of X (at ``x_addr``) into Y (at ``y_addr``) with the kernel block at ``block``."""
    h = numba.carray(_ptr(block), (HEADER,), np.int64)
    I, K, L, O = h[H_I], h[H_K], h[H_L], h[H_O]
    x = numba.carray(_ptr(x_addr + a * I * 4), (b - a, I), np.float32)
    y = numba.carray(_ptr(y_addr + a * O * 4), (b - a, O), np.float32)
    knots = numba.carray(_ptr(block + h[H_KNOTS]), (I, K + 1), np.float32)
    bounds = numba.carray(_ptr(block + h[H_BOUNDS]), (3, I), np.float32)
    seg_scale = numba.carray(_ptr(block + h[H_SEG_SCALE]), (I, K), np.float32)
    dense = numba.carray(_ptr(block + h[H_DENSE]), (I * K * L, O), np.float32)
    base_w = numba.carray(_ptr(block + h[H_BASE_W]), (I, O), np.float32)
    edge_mask = numba.carray(_ptr(block + h[H_EDGE_MASK]), (I, O), np.float32)
    edge_sum(x, knots, bounds, seg_scale, dense, base_w, edge_mask, L, h[H_INTERP], h[H_CLOSED] != 0, h[H_OOB],
             h[H_BASE], y)


@numba.njit(nogil=True, cache=True)
def _put_int(buf, pos, v):
    """Write the decimal digits of ``v`` at ``buf[pos:]``; returns the next position."""
    if v < 0:
        buf[pos] = 45  # '-'
        pos += 1
        v = -v
    digits = np.zeros(20, np.uint8)
    n = 0
    while True:
        digits[n] = 48 + v % 10
        n += 1
        v //= 10
        if v == 0:
            break
    for k in range(n):
        buf[pos + k] = digits[n - 1 - k]
    return pos + n


@numba.njit(nogil=True, cache=True)
def _put_text(buf, pos, text):
    for k in range(len(text)):
        buf[pos + k] = ord(text[k])
    return pos + len(text)


@numba.njit(nogil=True, cache=True)
def _bad_x(block, elem, nd, dims):
    """INVALID_ARGUMENT status: the node's message prefix, then what X is."""
    h = numba.carray(_ptr(block), (HEADER,), np.int64)
    n = h[H_MSG_LEN]
    msg = numba.carray(_ptr(block + h[H_MSG]), (n,), np.uint8)
    buf = np.zeros(n + 160, np.uint8)
    buf[:n] = msg
    pos = _put_text(buf, n, "element type ")
    pos = _put_int(buf, pos, elem)
    pos = _put_text(buf, pos, " (1 is float32), rank ")
    pos = _put_int(buf, pos, nd)
    if nd == 2:
        pos = _put_text(buf, pos, ", shape (")
        pos = _put_int(buf, pos, dims[0])
        pos = _put_text(buf, pos, ", ")
        pos = _put_int(buf, pos, dims[1])
        pos = _put_text(buf, pos, ")")
    status = _call2(h[H_CREATE_STATUS], _ORT_INVALID_ARGUMENT, buf.ctypes.data)
    buf[0] = 0  # keeps buf alive until CreateStatus has copied it
    return status


def _compute(block, context):
    """``KernelComputeV2``. A Numba exception (an allocation that fails) cannot leave a cfunc: it would
    return 0, "success", with Y unwritten; it becomes an ORT_FAIL status naming the node instead."""
    h = numba.carray(_ptr(block), (HEADER,), np.int64)
    try:
        return _compute_checked(block, context)
    except Exception:  # noqa: BLE001 - see the docstring
        return _call2(h[H_CREATE_STATUS], _ORT_FAIL, block + h[H_FAIL_MSG])


@numba.njit(nogil=True, cache=True)
def _compute_checked(block, context):
    h = numba.carray(_ptr(block), (HEADER,), np.int64)
    out = np.zeros(2, np.int64)  # out-parameters
    elem = np.zeros(1, np.int32)
    dims = np.zeros(2, np.int64)
    s = _call3(h[H_GET_INPUT], context, 0, out.ctypes.data)
    if s != 0:
        return s
    value = out[0]
    s = _call2(h[H_GET_TTS], value, out.ctypes.data)
    if s != 0:
        return s
    info = out[0]
    s = _call2(h[H_GET_ELEM], info, elem.ctypes.data)
    if s == 0:
        s = _call2(h[H_GET_NDIM], info, out.ctypes.data)
    nd = out[0]
    if s == 0 and nd == 2:
        s = _call3(h[H_GET_DIMS], info, dims.ctypes.data, 2)
    _callv1(h[H_REL_TTS], info)
    if s != 0:
        return s
    if elem[0] != 1 or nd != 2 or dims[1] != h[H_I]:
        return _bad_x(block, elem[0], nd, dims)
    N = dims[0]
    s = _call2(h[H_GET_DATA], value, out.ctypes.data)
    if s != 0:
        return s
    x_addr = out[0]
    dims[1] = h[H_O]
    s = _call5(h[H_GET_OUTPUT], context, 0, dims.ctypes.data, 2, out.ctypes.data)
    if s != 0:
        return s
    s = _call2(h[H_GET_DATA], out[0], out.ctypes.data)
    if s != 0 or N == 0:
        return s
    y_addr = out[0]
    want = N // h[H_SPLIT_ROWS]
    if want >= 2 and h[H_PARALLEL_FOR] != 0:
        probe = h[H_PROBES] < PROBES
        blocks = min(want, h[H_MAX_BLOCKS] if probe else h[H_THREADS])
        if blocks >= 2:
            job = np.zeros(_JOB + blocks, np.int64)
            job[0], job[1], job[2], job[3], job[4] = block, x_addr, y_addr, N, blocks
            s = _call5(h[H_PARALLEL_FOR], context, h[H_WORKER], blocks, blocks, job.ctypes.data)
            if s == 0 and job[5] != 0:
                return _call2(h[H_CREATE_STATUS], _ORT_FAIL, block + h[H_FAIL_MSG])
            if probe:  # benign races: concurrent calls may both probe, or keep the smaller of two counts
                h[H_PROBES] += 1
                h[H_THREADS] = max(h[H_THREADS], _threads_seen(job[_JOB:]))
            return s
    _run_rows(block, x_addr, y_addr, 0, N)
    return 0


@numba.njit(nogil=True, cache=True)
def _threads_seen(stacks):
    """How many threads ran the blocks: distinct stack regions among the blocks' stack addresses."""
    a = np.sort(stacks)
    n = 1
    for k in range(1, a.shape[0]):
        n += a[k] - a[k - 1] > _STACK_GAP
    return n


def _worker(job_addr, i):
    """One row block of a split call (a ParallelFor task); a failure is flagged in the job for the caller."""
    job = numba.carray(_ptr(job_addr), (_JOB,), np.int64)
    N, blocks = job[3], job[4]
    try:
        _run_rows(job[0], job[1], job[2], N * i // blocks, N * (i + 1) // blocks)
    except Exception:  # noqa: BLE001 - cannot leave a cfunc (see _compute)
        job[5] = 1
    numba.carray(_ptr(job_addr + (_JOB + i) * 8), (1,), np.int64)[0] = _stack_address()


_COMPUTE_SIG = types.int64(types.int64, types.int64)
_WORKER_SIG = types.void(types.int64, types.uint64)
_LOCK = threading.Lock()
_COMPILED: list = []


def compiled() -> tuple[int, int]:
    """Addresses of the compute cfunc and the ParallelFor worker cfunc (compiled or loaded on first use)."""
    with _LOCK:
        if not _COMPILED:
            cache = flush_stale((_compute, _worker, _compute_checked.py_func, edge_sum.py_func,
                                         _run_rows.py_func, _bad_x.py_func, _put_int.py_func, _put_text.py_func,
                                         _threads_seen.py_func))
            comp = numba.cfunc(_COMPUTE_SIG, nopython=True, cache=cache)(_compute)
            work = numba.cfunc(_WORKER_SIG, nopython=True, cache=cache)(_worker)
            _COMPILED[:] = [comp, work]
        return _COMPILED[0].address, _COMPILED[1].address


def build_block(alloc, api, kernel, message: bytes, failure: bytes) -> int:
    """A ``calloc``-ed kernel block for ``kernel`` (an ``EdgeSumKernel``): header, arrays, messages.

    Args:
        alloc: the forwarder's ``lutkan_alloc`` (the block is freed by its ``lutkan_free``).
        api: ``ortabi.Api`` of the runtime that creates the kernel.
        message: what a bad X is reported as, before "element type ..." (UTF-8 bytes).
        failure: the message of a computation that failed (UTF-8 bytes, stored NUL-terminated).

    Raises MemoryError if the allocation fails.
    """
    L, interp, closed, oob, base = kernel.flags
    arrays = [np.ascontiguousarray(a, dtype=np.float32) for a in
              (kernel.knots, kernel.bounds, kernel.seg_scale, kernel.dense, kernel.base_weight, kernel.edge_mask)]
    I, K, O = arrays[0].shape[0], arrays[0].shape[1] - 1, arrays[3].shape[1]
    h = np.zeros(HEADER, np.int64)
    h[H_MAGIC] = MAGIC
    for slot, name in _API_SLOTS.items():
        h[slot] = api.address_of(name)
    h[H_WORKER] = compiled()[1]
    h[[H_I, H_K, H_L, H_O, H_INTERP, H_CLOSED, H_OOB, H_BASE]] = [I, K, L, O, interp, int(closed), oob, base]
    off = HEADER * 8
    for slot, a in zip((H_KNOTS, H_BOUNDS, H_SEG_SCALE, H_DENSE, H_BASE_W, H_EDGE_MASK), arrays, strict=True):
        off = -(-off // 64) * 64
        h[slot] = off
        off += a.nbytes
    h[H_MSG], h[H_MSG_LEN] = off, len(message)
    h[H_FAIL_MSG] = off + len(message) + 1
    h[H_SPLIT_ROWS], h[H_MAX_BLOCKS], h[H_THREADS] = SPLIT_ROWS, min(os.cpu_count() or 1, 64), 1
    total = int(h[H_FAIL_MSG]) + len(failure) + 1
    ptr = alloc(total)
    if not ptr:
        raise MemoryError(f"cannot allocate {total} bytes for the kernel")
    ctypes.memmove(ptr, h.ctypes.data, h.nbytes)
    for slot, a in zip((H_KNOTS, H_BOUNDS, H_SEG_SCALE, H_DENSE, H_BASE_W, H_EDGE_MASK), arrays, strict=True):
        ctypes.memmove(ptr + int(h[slot]), a.ctypes.data, a.nbytes)
    ctypes.memmove(ptr + off, message, len(message))
    ctypes.memmove(ptr + int(h[H_FAIL_MSG]), failure, len(failure))
    return int(ptr)
