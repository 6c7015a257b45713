"""A strided convolution as a stride-1 convolution over the input's phases (CPU).

With stride s, output pixel y reads padded input rows s*y + i for the taps i < k. Write the
tap as i = s*i' + a (a = i mod s): the row is s*(y + i') + a, i.e. row y + i' of the rows
whose index is a mod s, the input's *phase* a. So every phase meets its own taps
a, a + s, a + 2s, ... at stride 1, and in 2-D::

    x'[n, (c*sh + a)*sw + b, u, v]  = xpad[n, c, sh*u + a, sw*v + b]   (C*sh*sw phase channels)
    w'[o, (c*sh + a)*sw + b, i', j'] = w[o, c, sh*i' + a, sw*j' + b]    (zero past the kernel)
    y[n, o, y_, x_] = sum_{c', i', j'} w'[o, c', i', j'] x'[n, c', y_ + i', x_ + j']

a stride-1 convolution with a ceil(kh/sh) x ceil(kw/sw) kernel and no padding. Where that
kernel is 3x3, Winograd F(2x2, 3x3) (``conv_winograd.py``) computes it: AlexNet's 11x11/4 stem
becomes a 3x3 convolution over 3*16 = 48 phase channels. The 11x11 kernel padded to 12x12
costs 1.19x the multiplies, Winograd saves 2.25x: 1.9x fewer in all, and no im2col (whose
columns are 7x the image there).

Backward: both maps are permutations of the input's and the weight's entries (plus padding),
so their adjoints put the phase gradients back where they came from (``merge``,
``weight_grad``).
"""
import numpy as np

from .. import tuning
from ..geometry import Window, output_size
from . import conv_winograd as winograd
from .threads import BatchSplit

_PHASE_WINDOW = Window(3, 3, 1, 1, 0, 0, 1, 1)  # the phase convolution: 3x3, stride 1, no padding


def cannot(op, fn, x, w):
    """Why the phase path cannot run ``op`` for the Function ``fn`` (None: it can)."""
    win = fn.win
    if op != "conv2d":
        return f"it computes conv2d only, not {op}"
    if max(win.sh, win.sw) < 2 or (win.dh, win.dw) != (1, 1) or fn.groups != 1:
        return "it needs a stride of 2 or more, dilation 1 and groups=1"
    if -(-win.kh // win.sh) != 3 or -(-win.kw // win.sw) != 3:
        return f"its phase kernel must be 3x3, and a {win.kh}x{win.kw} kernel at stride {(win.sh, win.sw)} is not"
    return winograd.unfit(op, x, w, _PHASE_WINDOW, 1)


def pays(x, w, fn):
    """Whether the padded phase kernel holds few enough extra taps for Winograd to pay, and the
    phase convolution itself pays."""
    win = fn.win
    if 9 * win.sh * win.sw > tuning.PHASES_MAX_PADDED_TAPS * win.kh * win.kw:
        return False
    phases = Phases(x.shape, w.shape, (win.sh, win.sw), (win.ph, win.pw))
    return winograd.pays(phases.x_shape, phases.w_shape, (0, 0))


class Conv2d(BatchSplit):
    """conv2d of the Function ``fn`` as Winograd over the input's stride phases, its batch split over the cores."""

    def forward(self, x, w, b=None):
        fn = self.fn
        self.x, self.w, self.pixels = x, w, fn.oh * fn.ow
        self.phases = Phases(x.shape, w.shape, (fn.win.sh, fn.win.sw), (fn.win.ph, fn.win.pw))
        # backward reads the phases (the input's size) instead of x
        self.w_phases, self.x_phases = self.phases.weight(w), np.empty(self.phases.x_shape, x.dtype)
        y = np.empty((x.shape[0], w.shape[0], fn.oh, fn.ow), x.dtype)

        def run(n0, n1):
            xs = self.phases.split(x[n0:n1], out=self.x_phases[n0:n1])
            winograd.conv2d(xs, self.w_phases, (0, 0), b, out=y[n0:n1])
        self.split(run)
        return y

    def work(self):
        return self.x.shape[0] * self.w.size * self.fn.oh * self.fn.ow

    def source(self, n0, n1):
        return self.x_phases[n0:n1]

    def share_backward(self, xs, gy, gx, need_w, need_b):
        gxs, gws = winograd.conv2d_backward(xs, gy, self.w_phases, (0, 0), gx is not None, need_w)
        if gx is not None:
            self.phases.merge(gxs, gx)
        return None if gws is None else self.phases.weight_grad(gws), None


class Phases:
    """The phase geometry of one strided convolution: x (N, C, H, W), w (O, C, kh, kw)."""

    def __init__(self, x_shape, w_shape, stride, padding):
        n, c, self.h, self.w = x_shape
        o, _, self.kh, self.kw = w_shape
        (self.sh, self.sw), (self.ph, self.pw) = stride, padding
        oh = output_size(self.h, self.kh, self.sh, self.ph)
        ow = output_size(self.w, self.kw, self.sw, self.pw)
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
