"""Depthwise convolution (``groups`` = input channels), computed directly, on both devices.

Output channel o = c*k + m (k = O/C, the multiplier) sees input channel c alone, so each of
the three products of ``ops/conv.py`` falls apart into one small sum per plane::

    y[n, o]        = sum_{i,j} w[o, 0, i, j] * (x[n, c] shifted by tap (i, j))
    gx[n, c]      += w[o, 0, i, j] * (gy[n, o] shifted back by tap (i, j)),  for m < k
    gw[o, 0, i, j] = sum_{n, oy, ox} gy[n, o, oy, ox] * x[n, c, oy*sh - ph + i*dh, ox*sw - pw + j*dw]

im2col would copy every plane kh*kw times to feed C matrix products a few numbers wide; the
kernels (``minicnn/cpu/depthwise.py``, ``kernels/depthwise.cu``) read the planes in place.
Xception's and MobileNet's separable convolutions are made of these and a 1x1 convolution.
"""
from .. import backend


def cannot(op, fn, x, w):
    """Why the depthwise path cannot run ``op`` (None: it can)."""
    if op != "conv2d":
        return "it computes conv2d only"
    if fn.groups != x.shape[1] or w.shape[1] != 1:
        return f"it needs groups equal to the {x.shape[1]} input channels (one input channel per group)"
    return None


class Conv2d:
    """conv2d of the Function ``fn`` (window, output size; groups = channels) by direct loops."""

    def __init__(self, fn):
        self.fn = fn

    def forward(self, x, w, b=None):
        self.x, self.w = x, w
        win = self.fn.win
        return backend.kernels(x).depthwise_conv2d(x, w, b, win.sh, win.sw, win.ph, win.pw, win.dh, win.dw,
                                                   self.fn.oh, self.fn.ow)  # the bias starts each sum

    def backward(self, gy):
        (need_x, need_w, *bias), win = self.fn.needs_input_grad, self.fn.win
        kernels, stride_etc = backend.kernels(gy), (win.sh, win.sw, win.ph, win.pw, win.dh, win.dw)
        gx = kernels.depthwise_conv2d_input_grad(gy, self.w, self.x.shape, *stride_etc) if need_x else None
        gw = kernels.depthwise_conv2d_weight_grad(self.x, gy, win.kh, win.kw, *stride_etc) if need_w else None
        return (gx, gw) + tuple(gy.sum(axis=(0, 2, 3)) for _ in bias)
