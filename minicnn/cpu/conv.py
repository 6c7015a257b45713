"""im2col and col2im on the CPU: the two memory-layout halves of a convolution.

``im2col`` copies every receptive field of ``x`` into one column so that a
convolution becomes a matrix product; ``col2im`` is its exact adjoint (every
column entry is added back to the pixel it came from). Layout (kernel spec)::

    col[n, (c*kh + i)*kw + j, y*ow + x_] = x[n, c, y*sh - ph + i*dh, x_*sw - pw + j*dw]

with 0 for positions outside the image. ``ph, pw`` pad the top and left; the
bottom and right padding is whatever ``oh, ow`` reach past the image.

Besides the kernel spec's arguments both functions accept ``out=``, a C-contiguous
array of the result's shape to write into (the convolution op reuses it across calls).
"""
import numba
import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import tuning
from . import threads


def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, out=None):
    """x (N, C, H, W) -> col (N, C*kh*kw, oh*ow): one strided view, one copy."""
    n, c, h, w = x.shape
    # rows/columns the windows reach, counted from the top/left of the padded image
    need_h = (oh - 1) * sh + (kh - 1) * dh + 1
    need_w = (ow - 1) * sw + (kw - 1) * dw + 1
    out = _output(out, (n, c * kh * kw, oh * ow), x.dtype, "im2col")
    if sw > 1 and dw == 1 and kh * kw >= tuning.IM2COL_PHASE_MIN_TAPS_PER_STEP * sh * sw:
        return _im2col_by_phase(x, kh, kw, sh, sw, ph, pw, dh, oh, ow, need_h, need_w, out)
    xpad = _pad(x, ph, pw, need_h, need_w)
    s_n, s_c, s_h, s_w = xpad.strides
    # windows[n, c, i, j, y, x_] = xpad[n, c, y*sh + i*dh, x_*sw + j*dw]
    windows = as_strided(xpad, shape=(n, c, kh, kw, oh, ow),
                         strides=(s_n, s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w), writeable=False)
    np.copyto(out.reshape(n, c, kh, kw, oh, ow), windows)
    return out


def _pad(x, ph, pw, need_h, need_w):
    """x zero-padded to (need_h, need_w) rows/columns, ph/pw of them at the top/left."""
    n, c, h, w = x.shape
    if not (ph or pw or need_h > h or need_w > w):
        return x
    xpad = np.zeros((n, c, need_h, need_w), x.dtype)
    hh, ww = max(0, min(h, need_h - ph)), max(0, min(w, need_w - pw))  # the part of x the windows read
    xpad[:, :, ph:ph + hh, pw:pw + ww] = x[:, :, :hh, :ww]
    return xpad


def _im2col_by_phase(x, kh, kw, sh, sw, ph, pw, dh, oh, ow, need_h, need_w, out):
    """im2col for sw > 1 (dw = 1) from the column phases xph[n, c, r, row, u] =
    xpad[n, c, row, u*sw + r]: tap j = q*sw + r reads xpad column x_*sw + j, which is xph
    column x_ + q of phase r, so every output row is a contiguous run. Two copies: the taps
    j < a = sw*(kw // sw) as one view with j split into (q, r), then the last kw - a taps."""
    n, c = x.shape[:2]
    xph = _column_phases(x, sw, ph, pw, need_h, -(-need_w // sw))
    s_n, s_c, s_r, s_h, s_w = xph.strides
    out6 = out.reshape(n, c, kh, kw, oh, ow)
    a = kw // sw * sw
    if a:
        # dst[n, c, i, q, r, y, x_] = xph[n, c, r, y*sh + i*dh, x_ + q]
        dst = out6[:, :, :, :a].reshape(n, c, kh, a // sw, sw, oh, ow)
        np.copyto(dst, _view(xph, dst.shape, (s_n, s_c, dh * s_h, s_w, s_r, sh * s_h, s_w)))
    if kw > a:
        # dst[n, c, i, r, y, x_] = xph[n, c, r, y*sh + i*dh, x_ + a // sw]
        dst = out6[:, :, :, a:]
        np.copyto(dst, _view(xph, dst.shape, (s_n, s_c, dh * s_h, s_r, sh * s_h, s_w), (a // sw) * s_w))
    return out


def _column_phases(x, sw, ph, pw, rows, cols):
    """xph (N, C, sw, rows, cols) with xph[n, c, r, row, u] = xpad[n, c, row, u*sw + r], xpad
    being x zero-padded by ph rows at the top and pw columns at the left (one pass over x)."""
    n, c, h, w = x.shape
    xph = np.zeros((n, c, sw, rows, cols), x.dtype)
    hh = max(0, min(h, rows - ph))  # the rows of x the windows read
    for r in range(sw):  # xpad column u*sw + r is x column u*sw + r - pw
        u0, u1 = max(0, -((r - pw) // sw)), min(cols, (w - 1 + pw - r) // sw + 1)
        if u1 > u0:
            start = u0 * sw + r - pw
            xph[:, :, r, ph:ph + hh, u0:u1] = x[:, :, :hh, start:start + (u1 - u0 - 1) * sw + 1:sw]
    return xph


def _view(base, shape, strides, offset=0):
    """A read-only strided view into contiguous ``base`` (like as_strided, at a fraction of its
    Python cost: the stems call this for every image)."""
    v = np.ndarray(shape, base.dtype, buffer=base, offset=offset, strides=strides)
    v.flags.writeable = False
    return v


def _output(out, shape, dtype, name):
    """``out`` checked (results are written through reshaped views of it), or a new array."""
    if out is None:
        return np.empty(shape, dtype)
    if out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(f"{name}: out must be a C-contiguous {np.dtype(dtype)} array of shape {shape}, "
                         f"got {out.dtype} {out.shape} (contiguous: {out.flags.c_contiguous})")
    return out


def col2im(col, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, out=None):
    """col (N, C*kh*kw, oh*ow) -> x (N, C, h, w), overlapping windows summed."""
    n = col.shape[0]
    c = col.shape[1] // (kh * kw)
    out = _output(out, (n, c, h, w), col.dtype, "col2im")
    # small problems run serially: waking the worker threads would cost more than the work;
    # so does a share of a batch split over the cores (it already has a core of its own)
    parallel = col.size >= tuning.COL2IM_PARALLEL_MIN_SIZE and threads.share() == 1
    fold = _fold_planes_parallel if parallel else _fold_planes_serial
    fold(col.reshape(n * c, kh, kw, oh, ow), out.reshape(n * c, h, w), sh, sw, ph, pw, dh, dw)
    return out



@numba.njit(cache=True, nogil=True)
def _fold_plane(col, plane, sh, sw, ph, pw, dh, dw):
    # col (kh, kw, oh, ow) of one (n, c) plane -> plane (h, w)
    kh, kw, oh, ow = col.shape
    h, w = plane.shape
    plane[:] = 0
    for i in range(kh):
        for j in range(kw):
            # output columns whose input column x_*sw - pw + j*dw lies inside [0, w)
            off = j * dw - pw
            x_lo = max(0, (-off + sw - 1) // sw)
            x_hi = min(ow, (w - 1 - off) // sw + 1)
            for y in range(oh):
                iy = y * sh - ph + i * dh
                if iy < 0 or iy >= h:
                    continue
                row, taps = plane[iy], col[i, j, y]
                if sw == 1:  # unit stride: a contiguous run the compiler vectorises
                    for xo in range(x_lo, x_hi):
                        row[xo + off] += taps[xo]
                else:
                    for xo in range(x_lo, x_hi):
                        row[xo * sw + off] += taps[xo]


@numba.njit(cache=True, parallel=True)
def _fold_planes_parallel(col, x, sh, sw, ph, pw, dh, dw):
    for p in numba.prange(x.shape[0]):  # one (n, c) plane per task: no two tasks write one pixel
        _fold_plane(col[p], x[p], sh, sw, ph, pw, dh, dw)


@numba.njit(cache=True, nogil=True)
def _fold_planes_serial(col, x, sh, sw, ph, pw, dh, dw):
    for p in range(x.shape[0]):
        _fold_plane(col[p], x[p], sh, sw, ph, pw, dh, dw)
