"""Max and average pooling on the GPU (kernels/pooling.cu). Output sizes come
from the op (floor or ceil mode); backward passes gather per input pixel."""
import numpy as np

from .launch import array_module, check_shape, kernel_name, launch


def max_pool2d_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """x (N, C, H, W) -> (y, idx), both (N, C, oh, ow); -inf padding, idx = h*W + w of the
    first maximum in the window (a NaN wins)."""
    xp = array_module("max_pool2d_forward", x)
    x = xp.ascontiguousarray(x)
    N, C, H, W = x.shape
    y = xp.empty((N, C, oh, ow), dtype=x.dtype)
    idx = xp.empty((N, C, oh, ow), dtype=np.int64)
    launch("pooling", kernel_name("max_pool2d_forward", "max_pool2d_forward", x.dtype), y.size,
           x, y, idx, N * C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    return y, idx


def max_pool2d_backward(gy, idx, h, w, kh, kw, sh, sw, ph, pw, dh, dw):
    """gy, idx (N, C, oh, ow) -> gx (N, C, h, w): each pixel sums gy over the windows
    that chose it (the window arguments tell which windows can have)."""
    xp = array_module("max_pool2d_backward", gy)
    gy = xp.ascontiguousarray(gy)
    idx = xp.ascontiguousarray(idx, dtype=np.int64)
    N, C, oh, ow = gy.shape
    check_shape("max_pool2d_backward", "idx", idx, gy.shape)
    gx = xp.empty((N, C, h, w), dtype=gy.dtype)
    launch("pooling", kernel_name("max_pool2d_backward", "max_pool2d_backward", gy.dtype), gx.size,
           gy, idx, gx, N * C, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    return gx


def avg_pool2d_forward(x, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad, divisor_override):
    """x (N, C, H, W) -> y (N, C, oh, ow), window sums over PyTorch's divisor
    (divisor_override, else the window size with or without the padding)."""
    xp = array_module("avg_pool2d_forward", x)
    x = xp.ascontiguousarray(x)
    N, C, H, W = x.shape
    y = xp.empty((N, C, oh, ow), dtype=x.dtype)
    launch("pooling", kernel_name("avg_pool2d_forward", "avg_pool2d_forward", x.dtype), y.size,
           x, y, N * C, H, W, kh, kw, sh, sw, ph, pw, oh, ow,
           bool(count_include_pad), int(divisor_override or 0))
    return y


def avg_pool2d_backward(gy, h, w, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad, divisor_override):
    """gy (N, C, oh, ow) -> gx (N, C, h, w): each pixel sums gy / divisor over the
    windows that cover it."""
    xp = array_module("avg_pool2d_backward", gy)
    gy = xp.ascontiguousarray(gy)
    N, C = gy.shape[:2]
    check_shape("avg_pool2d_backward", "gy", gy, (N, C, oh, ow))
    gx = xp.empty((N, C, h, w), dtype=gy.dtype)
    launch("pooling", kernel_name("avg_pool2d_backward", "avg_pool2d_backward", gy.dtype), gx.size,
           gy, gx, N * C, h, w, kh, kw, sh, sw, ph, pw, oh, ow,
           bool(count_include_pad), int(divisor_override or 0))
    return gx
