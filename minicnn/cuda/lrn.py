"""Local response normalisation across channels on the GPU (kernels/lrn.cu)."""
import math

from .launch import array_module, check_shape, kernel_name, launch


def lrn_forward(x, size, alpha, beta, k):
    """x (N, C, *) -> (y, scale) with scale = k + alpha/size * (sum of x^2 over the
    channels [c - size//2, c + (size-1)//2]) and y = x * scale^-beta."""
    xp = array_module("lrn_forward", x)
    x = xp.ascontiguousarray(x)
    N, C, S = x.shape[0], x.shape[1], math.prod(x.shape[2:])
    y, scale = xp.empty_like(x), xp.empty_like(x)
    T = x.dtype.type
    launch("lrn", kernel_name("lrn_forward", "lrn_forward", x.dtype), x.size,
           x, y, scale, N, C, S, size, T(alpha), T(beta), T(k))
    return y, scale


def lrn_backward(gy, x, y, scale, size, alpha, beta):
    """gx = gy * scale^-beta - 2*alpha*beta/size * x * (sum of gy*y/scale over the
    channels whose window holds this one)."""
    xp = array_module("lrn_backward", gy)
    gy, x, y, scale = (xp.ascontiguousarray(a) for a in (gy, x, y, scale))
    for name, a in (("gy", gy), ("y", y), ("scale", scale)):
        check_shape("lrn_backward", name, a, x.shape)
    N, C, S = x.shape[0], x.shape[1], math.prod(x.shape[2:])
    gx = xp.empty_like(x)
    T = x.dtype.type
    launch("lrn", kernel_name("lrn_backward", "lrn_backward", x.dtype), x.size,
           gy, x, y, scale, gx, N, C, S, size, T(alpha), T(beta))
    return gx
