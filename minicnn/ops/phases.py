"""A strided convolution as a stride-1 convolution over the input's phases (CPU).

With stride s, output pixel y reads padded input rows s*y + i for the taps i < k. Write the
tap as i = s*i' + a (a = i mod s): the row is s*(y + i') + a, i.e. row y + i' of the rows
whose index is a mod s, the input's *phase* a. So every phase meets its own taps
a, a + s, a + 2s, ... at stride 1, and in 2-D::

    x'[n, (c*sh + a)*sw + b, u, v]  = xpad[n, c, sh*u + a, sw*v + b]   (C*sh*sw phase channels)
    w'[o, (c*sh + a)*sw + b, i', j'] = w[o, c, sh*i' + a, sw*j' + b]    (zero past the kernel)
    y[n, o, y_, x_] = sum_{c', i', j'} w'[o, c', i', j'] x'[n, c', y_ + i', x_ + j']

a stride-1 convolution with a ceil(kh/sh) x ceil(kw/sw) kernel and no padding. Where that
kernel is 3x3, Winograd F(2x2, 3x3) (``ops/winograd.py``) computes it: AlexNet's 11x11/4 stem
becomes a 3x3 convolution over 3*16 = 48 phase channels. The 11x11 kernel padded to 12x12
costs 1.19x the multiplies, Winograd saves 2.25x: 1.9x fewer in all, and no im2col (whose
columns are 7x the image there).

Backward: both maps are permutations of the input's and the weight's entries (plus padding),
so their adjoints put the phase gradients back where they came from (``merge``,
``weight_grad``).
"""
import numpy as np

from . import winograd

# the padded kernel may hold at most this many times the taps of the real one (Winograd's
# 2.25x fewer multiplies must still pay): 11x11/4 (1.19), 5x5/2 (1.44), not 9x9/4 (1.78)
MAX_PADDED_TAPS = 1.5


def supports(x_shape, w_shape, stride, padding, dilation, groups):
    """True when conv2d of these shapes runs (and pays off) as Winograd over the phases: a
    stride > 1 whose phase kernel is 3x3, dilation 1, groups 1, and a phase convolution
    that ``winograd.supports``."""
    (sh, sw), (dh, dw) = stride, dilation
    _, _, kh, kw = w_shape
    if len(x_shape) != 4 or max(sh, sw) < 2 or (dh, dw) != (1, 1) or groups != 1:
        return False
    if -(-kh // sh) != 3 or -(-kw // sw) != 3 or 9 * sh * sw > MAX_PADDED_TAPS * kh * kw:
        return False
    geometry = Phases(x_shape, w_shape, stride, padding)
    if min(geometry.rows, geometry.cols) < 3:
        return False
    return winograd.supports(geometry.x_shape, geometry.w_shape, 1, 0, 1, 1)


class Phases:
    """The phase geometry of one strided convolution: x (N, C, H, W), w (O, C, kh, kw)."""

    def __init__(self, x_shape, w_shape, stride, padding):
        n, c, self.h, self.w = x_shape
        o, _, self.kh, self.kw = w_shape
        (self.sh, self.sw), (self.ph, self.pw) = stride, padding
        oh = (self.h + 2 * self.ph - self.kh) // self.sh + 1
        ow = (self.w + 2 * self.pw - self.kw) // self.sw + 1
        self.rows, self.cols = oh + 2, ow + 2  # a 3x3 stride-1 valid convolution leaves oh, ow
        self.x_shape = (n, c * self.sh * self.sw, self.rows, self.cols)
        self.w_shape = (o, c * self.sh * self.sw, 3, 3)

    def _phase(self, a, b, extent):
        """Phase (a, b): its rows u0:u1 and columns v0:v1 that hold pixels of an image of
        ``extent`` (h, w), and the first of those pixels (r0, c0); None if it holds none."""
        (h, w), spans = extent, []
        for off, pad, stride, n, size in ((a, self.ph, self.sh, self.rows, h), (b, self.pw, self.sw, self.cols, w)):
            # phase index u holds padded row stride*u + off, i.e. image row stride*u + off - pad
            u0 = max(0, -((off - pad) // stride))
            u1 = min(n, (size - 1 - off + pad) // stride + 1)
            if u1 <= u0:
                return None
            spans.append((u0, u1, stride * u0 + off - pad))
        return spans

    def split(self, x, out=None):
        """x (nb, C, H, W) -> x' (nb, C*sh*sw, rows, cols): the zero-padded phases, written into
        ``out`` (C-contiguous) if given."""
        nb, c = x.shape[:2]
        if out is None:
            out = np.empty((nb,) + self.x_shape[1:], x.dtype)
        xs = out.reshape(nb, c, self.sh * self.sw, self.rows, self.cols)
        xs[...] = 0
        for p, (a, b) in enumerate(np.ndindex(self.sh, self.sw)):
            spans = self._phase(a, b, x.shape[2:])
            if spans:
                (u0, u1, r0), (v0, v1, c0) = spans
                xs[:, :, p, u0:u1, v0:v1] = x[:, :, r0:r0 + self.sh * (u1 - u0):self.sh,
                                              c0:c0 + self.sw * (v1 - v0):self.sw]
        return out

    def merge(self, gxs, out):
        """The adjoint of ``split``: gx' (nb, C*sh*sw, rows, cols) -> ``out`` (nb, C, H, W)."""
        nb, c = out.shape[:2]
        gxs = gxs.reshape(nb, c, self.sh * self.sw, self.rows, self.cols)
        out[...] = 0  # pixels that no window reaches
        for p, (a, b) in enumerate(np.ndindex(self.sh, self.sw)):
            spans = self._phase(a, b, out.shape[2:])
            if spans:
                (u0, u1, r0), (v0, v1, c0) = spans
                out[:, :, r0:r0 + self.sh * (u1 - u0):self.sh,
                    c0:c0 + self.sw * (v1 - v0):self.sw] = gxs[:, :, p, u0:u1, v0:v1]
        return out

    def weight(self, w):
        """w (O, C, kh, kw) -> w' (O, C*sh*sw, 3, 3), zero where the 3x3 phase taps pass kh, kw."""
        o, c = w.shape[:2]
        wpad = np.zeros((o, c, 3, self.sh, 3, self.sw), w.dtype)
        wpad.reshape(o, c, 3 * self.sh, 3 * self.sw)[:, :, :self.kh, :self.kw] = w
        return wpad.transpose(0, 1, 3, 5, 2, 4).reshape(self.w_shape)

    def weight_grad(self, gws):
        """The adjoint of ``weight``: gw' (O, C*sh*sw, 3, 3) -> gw (O, C, kh, kw)."""
        o = gws.shape[0]
        c = gws.shape[1] // (self.sh * self.sw)
        g = gws.reshape(o, c, self.sh, self.sw, 3, 3).transpose(0, 1, 4, 2, 5, 3)
        return np.ascontiguousarray(g.reshape(o, c, 3 * self.sh, 3 * self.sw)[:, :, :self.kh, :self.kw])
