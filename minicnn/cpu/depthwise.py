"""Depthwise convolution on the CPU: direct numba loops, no im2col.

With ``groups`` equal to the input channels C, output channel o = c*k + m (k = O/C, the
multiplier) sees input channel c alone::

    y[n, o, oy, ox] = sum_{i, j} w[o, 0, i, j] * x[n, o // k, oy*sh - ph + i*dh, ox*sw - pw + j*dw]

im2col would copy each plane kh*kw times to feed C matrix products nine numbers wide; these
loops read the plane in place instead. Each takes one output row at a time and, for every
tap, the columns ox whose pixel lies inside the image (``_inside``), so the innermost loop
has no test and, at stride 1, runs over contiguous memory (numba vectorises it). Every
(image, channel) plane is one parallel task; the input gradient scatters into its own plane,
and the weight gradient sums one output channel per task, so no two tasks write one place.
"""
import numba
import numpy as np

from .. import tuning
from .jit import serial_and_parallel


@numba.njit(cache=True, inline="always")
def _inside(count, stride, offset, size):
    """[a, b): the indices t < count with 0 <= t*stride + offset < size."""
    a = 0 if offset >= 0 else (-offset + stride - 1) // stride
    b = 0 if size - offset <= 0 else min(count, (size - offset + stride - 1) // stride)
    return a, max(a, b)


def _forward_loop(x, w, y, sh, sw, ph, pw, dh, dw):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = y.shape[2], y.shape[3]
    k = o // c
    for p in numba.prange(n * o):
        b, oc = p // o, p % o
        src, dst = x[b, oc // k], y[b, oc]
        for oy in range(oh):
            for ox in range(ow):
                dst[oy, ox] = 0
            for i in range(kh):
                iy = oy * sh - ph + i * dh
                if iy < 0 or iy >= h:
                    continue
                for j in range(kw):
                    tap, off = w[oc, 0, i, j], j * dw - pw
                    a, e = _inside(ow, sw, off, wd)
                    for ox in range(a, e):
                        dst[oy, ox] += tap * src[iy, ox * sw + off]


def _input_grad_loop(gy, w, gx, sh, sw, ph, pw, dh, dw):
    n, c, h, wd = gx.shape
    o, _, kh, kw = w.shape
    oh, ow = gy.shape[2], gy.shape[3]
    k = o // c
    for p in numba.prange(n * c):
        b, ci = p // c, p % c
        dst = gx[b, ci]
        dst[:, :] = 0
        for m in range(k):
            oc = ci * k + m
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


def _weight_grad_loop(x, gy, gw, sh, sw, ph, pw, dh, dw):
    n, c, h, wd = x.shape
    o, _, kh, kw = gw.shape
    oh, ow = gy.shape[2], gy.shape[3]
    k = o // c
    for oc in numba.prange(o):
        for i in range(kh):
            for j in range(kw):
                off = j * dw - pw
                a, e = _inside(ow, sw, off, wd)
                acc = 0.0
                for b in range(n):
                    src, g = x[b, oc // k], gy[b, oc]
                    for oy in range(oh):
                        iy = oy * sh - ph + i * dh
                        if iy < 0 or iy >= h:
                            continue
                        for ox in range(a, e):
                            acc += g[oy, ox] * src[iy, ox * sw + off]
                gw[oc, 0, i, j] = acc


_SUMS = dict(fastmath={"reassoc", "contract"})  # reassociation lets the sums vectorise
_forward, _forward_parallel = serial_and_parallel(_forward_loop, **_SUMS)
_input_grad, _input_grad_parallel = serial_and_parallel(_input_grad_loop, **_SUMS)
_weight_grad, _weight_grad_parallel = serial_and_parallel(_weight_grad_loop, **_SUMS)


def _pick(parallel, serial, a):
    return parallel if a.size >= tuning.PARALLEL_MIN_SIZE else serial


def depthwise_conv2d(x, w, sh, sw, ph, pw, dh, dw, oh, ow):
    """y (N, O, oh, ow) of x (N, C, H, W) and w (O, 1, kh, kw), groups = C, O = k*C; no bias."""
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    y = np.empty((x.shape[0], w.shape[0], oh, ow), x.dtype)
    _pick(_forward_parallel, _forward, y)(x, w, y, sh, sw, ph, pw, dh, dw)
    return y


def depthwise_conv2d_input_grad(gy, w, x_shape, sh, sw, ph, pw, dh, dw):
    """gx (N, C, H, W) = ``x_shape`` of sum(depthwise_conv2d(x, w) * gy)."""
    gy, w = np.ascontiguousarray(gy), np.ascontiguousarray(w)
    gx = np.empty(x_shape, gy.dtype)
    _pick(_input_grad_parallel, _input_grad, gx)(gy, w, gx, sh, sw, ph, pw, dh, dw)
    return gx


def depthwise_conv2d_weight_grad(x, gy, kh, kw, sh, sw, ph, pw, dh, dw):
    """gw (O, 1, kh, kw) of sum(depthwise_conv2d(x, w) * gy)."""
    x, gy = np.ascontiguousarray(x), np.ascontiguousarray(gy)
    gw = np.empty((gy.shape[1], 1, kh, kw), x.dtype)
    _pick(_weight_grad_parallel, _weight_grad, gy)(x, gy, gw, sh, sw, ph, pw, dh, dw)
    return gw
