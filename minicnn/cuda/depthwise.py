"""Depthwise convolution on the GPU (kernels/depthwise.cu): per-element gathers, no im2col and
no atomics; the weight gradient adds up interleaved partial sums."""
from .. import tuning
from .launch import array_module, kernel_name, launch


def depthwise_conv2d(x, w, b, sh, sw, ph, pw, dh, dw, oh, ow):
    """y (N, O, oh, ow) of x (N, C, H, W), w (O, 1, kh, kw) and b (O,) or None; groups = C, O = k*C."""
    xp = array_module("depthwise_conv2d", x)
    x, w = xp.ascontiguousarray(x), xp.ascontiguousarray(w)
    (N, C, H, W), (O, _, kh, kw) = x.shape, w.shape
    b = xp.zeros(O, x.dtype) if b is None else xp.ascontiguousarray(b)
    y = xp.empty((N, O, oh, ow), x.dtype)
    launch("depthwise", kernel_name("depthwise_conv2d", "depthwise_forward", x.dtype), y.size,
           b, x, w, y, N, C, H, W, O, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    return y


def depthwise_conv2d_input_grad(gy, w, x_shape, sh, sw, ph, pw, dh, dw):
    """gx (N, C, H, W) = ``x_shape`` of sum(depthwise_conv2d(x, w) * gy)."""
    xp = array_module("depthwise_conv2d_input_grad", gy)
    gy, w = xp.ascontiguousarray(gy), xp.ascontiguousarray(w)
    (N, C, H, W), (O, _, kh, kw), (oh, ow) = x_shape, w.shape, gy.shape[2:]
    gx = xp.empty((N, C, H, W), gy.dtype)
    launch("depthwise", kernel_name("depthwise_conv2d_input_grad", "depthwise_input_grad", gy.dtype), gx.size,
           gy, w, gx, N, C, H, W, O, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    return gx


def depthwise_conv2d_weight_grad(x, gy, kh, kw, sh, sw, ph, pw, dh, dw):
    """gw (O, 1, kh, kw) of sum(depthwise_conv2d(x, w) * gy)."""
    xp = array_module("depthwise_conv2d_weight_grad", x)
    x, gy = xp.ascontiguousarray(x), xp.ascontiguousarray(gy)
    (N, C, H, W), (O, oh, ow) = x.shape, gy.shape[1:]
    parts = max(1, min(N * oh * ow, tuning.CUDA_DEPTHWISE_PARTIALS))
    partial = xp.empty((O, 1, kh, kw, parts), x.dtype)
    launch("depthwise", kernel_name("depthwise_conv2d_weight_grad", "depthwise_weight_grad", x.dtype),
           partial.size, x, gy, partial, N, C, H, W, O, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, parts)
    return partial.sum(axis=-1)
