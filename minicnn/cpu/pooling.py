"""Pooling window loops on the CPU: numba, one (n, c) plane per parallel iteration.

Geometry shared with ``minicnn.cuda``: output pixel (oy, ox) of a plane reads rows
``oy*sh - ph + i*dh`` (0 <= i < kh) and columns ``ox*sw - pw + j*dw`` (0 <= j < kw);
positions outside the plane are padding. The op computes the output size (oh, ow).
Indices are flat positions ``row*w + col`` within a plane, int64, as PyTorch's.

Each public function is a thin wrapper that allocates the result and views every
array as (planes, rows, cols) or (planes, pixels); the jitted loop does the work.
Planes are independent, so ``prange`` over them needs no locks, and inside a plane
the loops run in order, so backward sums are deterministic.
"""
import numba
import numpy as np
from numba import prange

from .. import tuning
from .jit import serial_and_parallel


def _pick(serial, size):
    """The serial build of a loop, or its parallel twin for arrays of ``PARALLEL_MIN_SIZE`` or more
    (waking the threads costs more than a small loop, and they then contend with BLAS's)."""
    return _PARALLEL[serial] if size >= tuning.PARALLEL_MIN_SIZE else serial


def _planes(a):
    """(N, C, H, W) -> contiguous (N*C, H, W) view (a copy only if ``a`` is strided)."""
    n, c, h, w = a.shape
    return np.ascontiguousarray(a).reshape(n * c, h, w)


def _flat_planes(a):
    """(N, C, H, W) -> contiguous (N*C, H*W) view (a copy only if ``a`` is strided)."""
    n, c, h, w = a.shape
    return np.ascontiguousarray(a).reshape(n * c, h * w)


# -- max pooling ---------------------------------------------------------------
@numba.njit(cache=True, inline="always")
def _taps(start, k, d, size):
    """Taps [lo, hi) of a window starting at ``start`` (step d, k taps) that fall inside
    [0, size): computed once per window so the inner loops need no bounds tests."""
    lo = 0 if start >= 0 else (-start + d - 1) // d  # first i with start + i*d >= 0
    hi = min(k, (size - start + d - 1) // d)  # taps with start + i*d < size
    return lo, max(lo, hi)


def _max_pool_forward_loop(x, y, idx, kh, kw, sh, sw, ph, pw, dh, dw):
    planes, h, w = x.shape
    oh, ow = y.shape[1], y.shape[2]
    for p in prange(planes):
        for oy in range(oh):
            r0 = oy * sh - ph
            i0, i1 = _taps(r0, kh, dh, h)
            for ox in range(ow):
                c0 = ox * sw - pw
                j0, j1 = _taps(c0, kw, dw, w)
                best = -np.inf
                arg = -1  # stays -1 only if the whole window is padding (possible with dilation)
                if i0 < i1 and j0 < j1:
                    arg = (r0 + i0 * dh) * w + c0 + j0 * dw  # first real pixel, in case all are -inf
                for i in range(i0, i1):
                    r = r0 + i * dh
                    for j in range(j0, j1):
                        v = x[p, r, c0 + j * dw]
                        # strict '>' keeps the first maximum; a NaN always wins (as PyTorch)
                        if v > best or np.isnan(v):
                            best = v
                            arg = r * w + c0 + j * dw
                y[p, oy, ox] = best
                idx[p, oy, ox] = arg


_max_pool_forward, _max_pool_forward_parallel = serial_and_parallel(_max_pool_forward_loop)


def max_pool2d_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """x (N, C, H, W) -> (y, idx), both (N, C, oh, ow); padding is -inf, ties go to
    the first maximum in row-major window order; idx = r*W + c of the maximum."""
    n, c = x.shape[:2]
    y = np.empty((n, c, oh, ow), x.dtype)
    idx = np.empty((n, c, oh, ow), np.int64)
    _pick(_max_pool_forward, x.size)(_planes(x), _planes(y), _planes(idx), kh, kw, sh, sw, ph, pw, dh, dw)
    return y, idx


def _scatter_add_loop(gy, idx, gx):
    # gy, idx (planes, outputs); gx (planes, pixels), zero on entry
    for p in prange(gy.shape[0]):
        for k in range(gy.shape[1]):
            if idx[p, k] >= 0:
                gx[p, idx[p, k]] += gy[p, k]


_scatter_add, _scatter_add_parallel = serial_and_parallel(_scatter_add_loop)


def max_pool2d_backward(gy, idx, h, w, kh, kw, sh, sw, ph, pw, dh, dw):
    """gy, idx (N, C, oh, ow) -> gx (N, C, h, w) with gx.flat[idx] += gy per plane.
    The window arguments are unused here (the CUDA twin gathers with them)."""
    gx = np.zeros(gy.shape[:2] + (h, w), gy.dtype)
    _pick(_scatter_add, gx.size)(_flat_planes(gy), _flat_planes(idx), _flat_planes(gx))
    return gx


# -- average pooling -------------------------------------------------------------
@numba.njit(cache=True, inline="always")
def _avg_window(o, s, k, p, size):
    """Rows [lo, hi) of window o that lie in the plane, and its padded extent
    (PyTorch: the window may run into the padding but not beyond it)."""
    start = o * s - p
    end = min(start + k, size + p)
    return max(start, 0), min(end, size), end - start


def _avg_pool_forward_loop(x, y, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    planes, h, w = x.shape
    oh, ow = y.shape[1], y.shape[2]
    for p in prange(planes):
        for oy in range(oh):
            r0, r1, rows = _avg_window(oy, sh, kh, ph, h)
            for ox in range(ow):
                c0, c1, cols = _avg_window(ox, sw, kw, pw, w)
                if divisor_override:
                    divisor = divisor_override
                elif count_include_pad:
                    divisor = rows * cols
                else:
                    divisor = (r1 - r0) * (c1 - c0)
                total = 0.0
                for r in range(r0, r1):
                    for c in range(c0, c1):
                        total += x[p, r, c]
                y[p, oy, ox] = total / divisor


_avg_pool_forward, _avg_pool_forward_parallel = serial_and_parallel(_avg_pool_forward_loop)


def avg_pool2d_forward(x, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad, divisor_override):
    """x (N, C, H, W) -> y (N, C, oh, ow): window sums (padding counts as 0) over
    PyTorch's divisor: divisor_override, else the window's padded size
    (count_include_pad) or its number of real pixels."""
    n, c = x.shape[:2]
    y = np.empty((n, c, oh, ow), x.dtype)
    _pick(_avg_pool_forward, x.size)(_planes(x), _planes(y), kh, kw, sh, sw, ph, pw,
                      bool(count_include_pad), int(divisor_override or 0))
    return y


def _avg_pool_backward_loop(gy, gx, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    planes, h, w = gx.shape
    oh, ow = gy.shape[1], gy.shape[2]
    for p in prange(planes):
        for oy in range(oh):
            r0, r1, rows = _avg_window(oy, sh, kh, ph, h)
            for ox in range(ow):
                c0, c1, cols = _avg_window(ox, sw, kw, pw, w)
                if divisor_override:
                    divisor = divisor_override
                elif count_include_pad:
                    divisor = rows * cols
                else:
                    divisor = (r1 - r0) * (c1 - c0)
                g = gy[p, oy, ox] / divisor
                for r in range(r0, r1):
                    for c in range(c0, c1):
                        gx[p, r, c] += g


_avg_pool_backward, _avg_pool_backward_parallel = serial_and_parallel(_avg_pool_backward_loop)


def avg_pool2d_backward(gy, h, w, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad, divisor_override):
    """gy (N, C, oh, ow) -> gx (N, C, h, w): each window's gy / divisor spread over
    its real pixels (the adjoint of avg_pool2d_forward)."""
    n, c = gy.shape[:2]
    gx = np.zeros((n, c, h, w), gy.dtype)
    _pick(_avg_pool_backward, gx.size)(_planes(gy), _planes(gx), kh, kw, sh, sw, ph, pw,
                       bool(count_include_pad), int(divisor_override or 0))
    return gx


# -- max unpooling ---------------------------------------------------------------
def _scatter_loop(x, idx, y):
    # x, idx (planes, inputs); y (planes, pixels), zero on entry
    for p in prange(x.shape[0]):
        for k in range(x.shape[1]):
            y[p, idx[p, k]] = x[p, k]


_scatter, _scatter_parallel = serial_and_parallel(_scatter_loop)


def _gather_loop(gy, idx, gx):
    for p in prange(gx.shape[0]):
        for k in range(gx.shape[1]):
            gx[p, k] = gy[p, idx[p, k]]


_gather, _gather_parallel = serial_and_parallel(_gather_loop)


def max_unpool2d_forward(x, idx, oh, ow):
    """x, idx (N, C, h, w) -> y (N, C, oh, ow): zeros with y.flat[idx] = x per plane.
    ``idx`` must lie in [0, oh*ow) (the op checks it)."""
    y = np.zeros(x.shape[:2] + (oh, ow), x.dtype)
    _pick(_scatter, y.size)(_flat_planes(x), _flat_planes(idx), _flat_planes(y))
    return y


def max_unpool2d_backward(gy, idx):
    """gy (N, C, oh, ow), idx (N, C, h, w) -> gx = gy.flat[idx] per plane, shaped as idx."""
    gx = np.empty(idx.shape, gy.dtype)
    _pick(_gather, gy.size)(_flat_planes(gy), _flat_planes(idx), _flat_planes(gx))
    return gx


_PARALLEL = {_max_pool_forward: _max_pool_forward_parallel, _scatter_add: _scatter_add_parallel,
             _avg_pool_forward: _avg_pool_forward_parallel, _avg_pool_backward: _avg_pool_backward_parallel,
             _scatter: _scatter_parallel, _gather: _gather_parallel}
