"""im2col / col2im on the GPU (kernels/im2col.cu): the data movement around the
matrix product that computes a convolution (the product itself is cuBLAS,
through ``xp.matmul``)."""
from .launch import array_module, kernel_name, launch


def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, out=None):
    """x (N, C, H, W) -> col (N, C*kh*kw, oh*ow) with
    col[n, (c*kh + i)*kw + j, y*ow + x_] = x[n, c, y*sh - ph + i*dh, x_*sw - pw + j*dw] (0 outside)."""
    xp = array_module("im2col", x)
    x = xp.ascontiguousarray(x)
    N, C, H, W = x.shape
    col = _output(xp, out, (N, C * kh * kw, oh * ow), x.dtype, "im2col")
    launch("im2col", kernel_name("im2col", "im2col", x.dtype), col.size,
           x, col, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    return col


def col2im(col, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, out=None):
    """The adjoint of im2col: col (N, C*kh*kw, oh*ow) -> x (N, C, h, w), overlapping
    taps summed (a per-pixel gather: deterministic, no atomics)."""
    xp = array_module("col2im", col)
    col = xp.ascontiguousarray(col)
    N, K = col.shape[:2]
    if K % (kh * kw) or col.shape[2] != oh * ow:
        raise ValueError(
            f"col2im: col of shape {col.shape} does not match a {kh}x{kw} kernel "
            f"and a {oh}x{ow} output")
    C = K // (kh * kw)
    x = _output(xp, out, (N, C, h, w), col.dtype, "col2im")
    launch("im2col", kernel_name("col2im", "col2im", col.dtype), x.size,
           col, x, N, C, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    return x


def _output(xp, out, shape, dtype, op):
    """A fresh result array, or the caller's ``out`` once checked (the kernels write
    it as one contiguous block)."""
    if out is None:
        return xp.empty(shape, dtype=dtype)
    if out.shape != tuple(shape) or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(f"{op}: out must be a contiguous {dtype} array of shape {tuple(shape)}, "
                         f"got {out.dtype} {out.shape} (contiguous: {out.flags.c_contiguous})")
    return out
