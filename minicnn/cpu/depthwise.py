"""Depthwise convolution on the CPU: direct numba loops over each plane, no im2col.

With ``groups`` equal to the input channels C, output channel o = c*k + m (k = O/C, the
multiplier) sees input channel c alone::

    y[n, o, oy, ox] = sum_{i, j} w[o, 0, i, j] * x[n, o // k, oy*sh - ph + i*dh, ox*sw - pw + j*dw]

**Stride 1: wide planes.** The plane is copied once into a zeroed buffer of rows ``wp`` wide
(the padding included), flat. Then tap (i, j) reads the buffer at a fixed offset
i*dh*wp + j*dw from the output's own flat index, so the output plane, also ``wp`` wide, is
kh*kw passes of ``acc[q] += w_ij * buf[q + offset]`` over one long contiguous run, which
numba vectorises; the columns past ``ow`` are computed and dropped. The input gradient is the
same correlation of gy with the flipped kernel (padding extent - 1 - p), and the weight
gradient is one dot product of gy with each tap's shifted buffer.

**Other strides** run the definition row by row (``_strided_*``): slower, and used by few
networks (MobileNet's downsampling layers).

Every (image, channel) plane, or every output channel for the weight gradient, is one
parallel task writing only its own results. Loops read through slices (``buf[off:off + n]``)
indexed from 0 by the loop counter: numba then drops its negative-index test and vectorises.
"""
import numba
import numpy as np

from .. import tuning
from .jit import serial_and_parallel

_SUMS = dict(fastmath={"reassoc", "contract"})  # reassociation lets the sums vectorise


@numba.njit(cache=True, inline="always")
def _widen(src, top, left, rows, width):
    """src (h, w) placed at (top, left) in a zeroed flat buffer of ``rows`` rows ``width`` wide."""
    buf = np.zeros(rows * width, src.dtype)
    for r in range(src.shape[0]):
        start = (r + top) * width + left
        buf[start:start + src.shape[1]] = src[r]
    return buf


@numba.njit(cache=True, inline="always")
def _correlate(acc, buf, taps, offset, step):
    """acc[q] += sum_t taps[t] * buf[q + offset + t*step] for every q of acc (flat): one tap
    row of the kernel. Three taps at a time share one pass over acc."""
    n, t = acc.size, 0
    while t + 3 <= len(taps):
        a, b, c = taps[t], taps[t + 1], taps[t + 2]
        s0 = buf[offset + t * step:offset + t * step + n]
        s1 = buf[offset + (t + 1) * step:offset + (t + 1) * step + n]
        s2 = buf[offset + (t + 2) * step:offset + (t + 2) * step + n]
        for q in range(n):
            acc[q] += a * s0[q] + b * s1[q] + c * s2[q]
        t += 3
    while t < len(taps):
        a, s0 = taps[t], buf[offset + t * step:offset + t * step + n]
        for q in range(n):
            acc[q] += a * s0[q]
        t += 1


@numba.njit(cache=True, inline="always")
def _dots(sums, g, buf, offset, step):
    """sums[t] += sum_q g[q] * buf[q + offset + t*step]: the weight gradient of one tap row,
    three taps to a pass over g (as ``_correlate``)."""
    n, t = g.size, 0
    while t + 3 <= len(sums):
        s0, s1, s2 = 0.0, 0.0, 0.0
        b0 = buf[offset + t * step:offset + t * step + n]
        b1 = buf[offset + (t + 1) * step:offset + (t + 1) * step + n]
        b2 = buf[offset + (t + 2) * step:offset + (t + 2) * step + n]
        for q in range(n):
            s0 += g[q] * b0[q]
            s1 += g[q] * b1[q]
            s2 += g[q] * b2[q]
        sums[t] += s0
        sums[t + 1] += s1
        sums[t + 2] += s2
        t += 3
    while t < len(sums):
        s0, b0 = 0.0, buf[offset + t * step:offset + t * step + n]
        for q in range(n):
            s0 += g[q] * b0[q]
        sums[t] += s0
        t += 1


def _forward_wide(x, w, b, y, ph, pw, dh, dw):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = y.shape[2], y.shape[3]
    k, wp = o // c, ow + (kw - 1) * dw
    rows = oh + (kh - 1) * dh + 1  # a spare row: the wide rows' last taps read past the image
    for p in numba.prange(n * o):
        im, oc = p // o, p % o
        buf = _widen(x[im, oc // k], ph, pw, rows, wp)
        acc = np.full(oh * wp, b[oc], y.dtype)
        for i in range(kh):
            _correlate(acc, buf, w[oc, 0, i], i * dh * wp, dw)
        for oy in range(oh):
            y[im, oc, oy] = acc[oy * wp:oy * wp + ow]


def _input_grad_wide(gy, w, gx, ph, pw, dh, dw):
    """gx = gy correlated with the flipped kernel, padded by (extent - 1 - p), summed over m."""
    n, c, h, wd = gx.shape
    o, _, kh, kw = w.shape
    k, wp = o // c, wd + (kw - 1) * dw
    rows, top, left = h + (kh - 1) * dh + 1, (kh - 1) * dh - ph, (kw - 1) * dw - pw
    for p in numba.prange(n * c):
        b, ci = p // c, p % c
        acc = np.zeros(h * wp, gx.dtype)
        for oc in range(ci * k, ci * k + k):
            buf = _widen(gy[b, oc], top, left, rows, wp)
            for i in range(kh):
                _correlate(acc, buf, w[oc, 0, kh - 1 - i, ::-1], i * dh * wp, dw)
        for r in range(h):
            gx[b, ci, r] = acc[r * wp:r * wp + wd]


def _weight_grad_wide(x, gy, gw, ph, pw, dh, dw):
    n, c, h, wd = x.shape
    o, _, kh, kw = gw.shape
    oh, ow = gy.shape[2], gy.shape[3]
    k, wp = o // c, ow + (kw - 1) * dw
    rows, length = oh + (kh - 1) * dh + 1, oh * wp
    for oc in numba.prange(o):
        sums = np.zeros(kh * kw)
        for b in range(n):
            buf = _widen(x[b, oc // k], ph, pw, rows, wp)
            g = _widen(gy[b, oc], 0, 0, oh, wp)  # gy in rows wp wide: zeros where acc was dropped
            for i in range(kh):
                _dots(sums[i * kw:(i + 1) * kw], g, buf, i * dh * wp, dw)
        for t in range(kh * kw):
            gw[oc, 0, t // kw, t % kw] = sums[t]


@numba.njit(cache=True, inline="always")
def _inside(count, stride, offset, size):
    """[a, b): the indices t < count with 0 <= t*stride + offset < size."""
    a = 0 if offset >= 0 else (-offset + stride - 1) // stride
    b = 0 if size - offset <= 0 else min(count, (size - offset + stride - 1) // stride)
    return a, max(a, b)


def _forward_strided(x, w, b, y, sh, sw, ph, pw, dh, dw):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = y.shape[2], y.shape[3]
    k = o // c
    for p in numba.prange(n * o):
        im, oc = p // o, p % o
        src, dst = x[im, oc // k], y[im, oc]
        for oy in range(oh):
            row = dst[oy]
            row[:] = b[oc]
            for i in range(kh):
                iy = oy * sh - ph + i * dh
                if iy < 0 or iy >= h:
                    continue
                for j in range(kw):
                    tap, off = w[oc, 0, i, j], j * dw - pw
                    a, e = _inside(ow, sw, off, wd)
                    for ox in range(a, e):
                        row[ox] += tap * src[iy, ox * sw + off]


def _input_grad_strided(gy, w, gx, sh, sw, ph, pw, dh, dw):
    n, c, h, wd = gx.shape
    o, _, kh, kw = w.shape
    oh, ow = gy.shape[2], gy.shape[3]
    k = o // c
    for p in numba.prange(n * c):
        b, ci = p // c, p % c
        dst = gx[b, ci]
        dst[:, :] = 0
        for oc in range(ci * k, ci * k + k):
            src = gy[b, oc]
            for oy in range(oh):
                for i in range(kh):
                    iy = oy * sh - ph + i * dh
                    if iy < 0 or iy >= h:
                        continue
                    for j in range(kw):
                        tap, off = w[oc, 0, i, j], j * dw - pw
                        a, e = _inside(ow, sw, off, wd)
                        for ox in range(a, e):
                            dst[iy, ox * sw + off] += tap * src[oy, ox]


def _weight_grad_strided(x, gy, gw, sh, sw, ph, pw, dh, dw):
    n, c, h, wd = x.shape
    o, _, kh, kw = gw.shape
    oh, ow = gy.shape[2], gy.shape[3]
    k = o // c
    for oc in numba.prange(o):
        for i in range(kh):
            for j in range(kw):
                off = j * dw - pw
                a, e = _inside(ow, sw, off, wd)
                s = 0.0
                for b in range(n):
                    src, g = x[b, oc // k], gy[b, oc]
                    for oy in range(oh):
                        iy = oy * sh - ph + i * dh
                        if iy < 0 or iy >= h:
                            continue
                        for ox in range(a, e):
                            s += g[oy, ox] * src[iy, ox * sw + off]
                gw[oc, 0, i, j] = s


_builds = {name: serial_and_parallel(loop, **_SUMS) for name, loop in (
    ("forward_wide", _forward_wide), ("input_grad_wide", _input_grad_wide), ("weight_grad_wide", _weight_grad_wide),
    ("forward_strided", _forward_strided), ("input_grad_strided", _input_grad_strided),
    ("weight_grad_strided", _weight_grad_strided))}


def _loop(name, size):
    """The serial or parallel build of loop ``name`` for ``size`` elements of work."""
    serial, parallel = _builds[name]
    return parallel if size >= tuning.PARALLEL_MIN_SIZE else serial


def depthwise_conv2d(x, w, b, sh, sw, ph, pw, dh, dw, oh, ow):
    """y (N, O, oh, ow) of x (N, C, H, W), w (O, 1, kh, kw) and b (O,) or None; groups = C, O = k*C."""
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    b = np.zeros(w.shape[0], x.dtype) if b is None else np.ascontiguousarray(b)
    y = np.empty((x.shape[0], w.shape[0], oh, ow), x.dtype)
    if (sh, sw) == (1, 1):
        _loop("forward_wide", y.size)(x, w, b, y, ph, pw, dh, dw)
    else:
        _loop("forward_strided", y.size)(x, w, b, y, sh, sw, ph, pw, dh, dw)
    return y


def depthwise_conv2d_input_grad(gy, w, x_shape, sh, sw, ph, pw, dh, dw):
    """gx (N, C, H, W) = ``x_shape`` of sum(depthwise_conv2d(x, w) * gy)."""
    gy, w = np.ascontiguousarray(gy), np.ascontiguousarray(w)
    gx = np.empty(x_shape, gy.dtype)
    kh, kw = w.shape[2:]
    if (sh, sw) == (1, 1) and ph <= (kh - 1) * dh and pw <= (kw - 1) * dw:  # the flipped padding is >= 0
        _loop("input_grad_wide", gy.size)(gy, w, gx, ph, pw, dh, dw)
    else:
        _loop("input_grad_strided", gy.size)(gy, w, gx, sh, sw, ph, pw, dh, dw)
    return gx


def depthwise_conv2d_weight_grad(x, gy, kh, kw, sh, sw, ph, pw, dh, dw):
    """gw (O, 1, kh, kw) of sum(depthwise_conv2d(x, w) * gy)."""
    x, gy = np.ascontiguousarray(x), np.ascontiguousarray(gy)
    gw = np.empty((gy.shape[1], 1, kh, kw), x.dtype)
    if (sh, sw) == (1, 1):
        _loop("weight_grad_wide", gy.size)(x, gy, gw, ph, pw, dh, dw)
    else:
        _loop("weight_grad_strided", gy.size)(x, gy, gw, sh, sw, ph, pw, dh, dw)
    return gw
