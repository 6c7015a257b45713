"""Max unpooling on the GPU (kernels/unpool.cu)."""
import numpy as np

from .launch import array_module, check_shape, kernel_name, launch


def _check_indices(op, idx, oh, ow):
    # a bad index would write outside y on the GPU, so look before launching
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= oh * ow):
        bad = int(idx.min()) if int(idx.min()) < 0 else int(idx.max())
        raise IndexError(f"{op}: index {bad} is out of range for an output plane of {oh}x{ow}")


def max_unpool2d_forward(x, idx, oh, ow):
    """x, idx (N, C, h, w) -> y (N, C, oh, ow): zeros, with y[n, c].flat[idx] = x."""
    xp = array_module("max_unpool2d_forward", x)
    x = xp.ascontiguousarray(x)
    idx = xp.ascontiguousarray(idx, dtype=np.int64)
    check_shape("max_unpool2d_forward", "idx", idx, x.shape)
    _check_indices("max_unpool2d_forward", idx, oh, ow)
    N, C, h, w = x.shape
    y = xp.zeros((N, C, oh, ow), dtype=x.dtype)
    launch("unpool", kernel_name("max_unpool2d_forward", "max_unpool2d_forward", x.dtype), x.size,
           x, idx, y, N * C, h * w, oh * ow)
    return y


def max_unpool2d_backward(gy, idx):
    """gy (N, C, oh, ow), idx (N, C, h, w) -> gx (N, C, h, w) = gy[n, c].flat[idx]."""
    xp = array_module("max_unpool2d_backward", gy)
    gy = xp.ascontiguousarray(gy)
    idx = xp.ascontiguousarray(idx, dtype=np.int64)
    N, C, oh, ow = gy.shape
    check_shape("max_unpool2d_backward", "idx", idx, (N, C) + idx.shape[2:])
    _check_indices("max_unpool2d_backward", idx, oh, ow)
    gx = xp.empty(idx.shape, dtype=gy.dtype)
    launch("unpool", kernel_name("max_unpool2d_backward", "max_unpool2d_backward", gy.dtype), gx.size,
           gy, idx, gx, N * C, idx.shape[2] * idx.shape[3], oh * ow)
    return gx
