"""2-D convolution and transposed convolution, as the textbook writes them: im2col, a GEMM, col2im.

conv2d, for group g of G, with Cg = C/G input and Og = O/G output channels::

    y[n, g*Og + o, oy, ox] = b[g*Og + o] + sum_{c<Cg, i, j} w[g*Og + o, c, i, j]
                             * x[n, g*Cg + c, oy*sh - ph + i*dh, ox*sw - pw + j*dw]

im2col copies every window of x into one column, col (N, C*kh*kw, L) with L = oh*ow
(``minicnn/cpu/conv.py`` and ``kernels/im2col.cu`` hold the copy loops), and then the
convolution is one matrix product per group, whose result already is y in NCHW::

    y (N, G, Og, L) = W (G, Og, Cg*kh*kw) @ col (N, G, Cg*kh*kw, L)
    gW = sum_n gy_n @ col_n^T      gx = col2im(W^T @ gy)      gb = sum_{n,oy,ox} gy

col2im is im2col's adjoint: it adds every column entry back onto the pixel it came from.
conv_transpose2d is conv2d's adjoint in x, the same GEMM and col2im: y = col2im(W^T @ x).

That is all a convolution is. Faster algorithms compute the same numbers and live beside
this file (``conv_algorithms.py`` lists them and picks one: tiled im2col, Winograd, stride
phases, the reference loops); ``with minicnn.backends.conv_algorithm("im2col"):`` runs this
one.
"""
import numpy as np

from .. import backend
from ..autograd import Function
from ..geometry import Window, at_least, conv_output_size, conv_transpose_output_size, pair
from ..tensor import Tensor
from . import conv_algorithms


def im2col(x, win, oh, ow):
    """x (N, C, H, W) -> col (N, C*kh*kw, oh*ow), on x's device."""
    return backend.kernels(x).im2col(x, *win, oh, ow)


def col2im(col, win, h, w, oh, ow):
    """col (N, C*kh*kw, oh*ow) -> x (N, C, h, w), overlapping windows summed."""
    return backend.kernels(col).col2im(col, h, w, *win, oh, ow)


class Conv2d(Function):
    """y = conv2d(x, w) + b; x (N, C, H, W), w (O, C/G, kh, kw), b (O,) -> y (N, O, oh, ow)."""

    def __init__(self, win, oh, ow, groups):
        self.win, self.oh, self.ow, self.groups = win, oh, ow, groups

    def forward(self, x, w, b=None):
        self.fast = conv_algorithms.choose("conv2d", self, x, w)
        if self.fast is not None:
            self.fast = self.fast(self)
            return self.fast.forward(x, w, b)
        self.x, self.w = x, w  # not col: it is kh*kw times bigger than x, and backward rebuilds it
        n, g, o = x.shape[0], self.groups, w.shape[0]
        col = im2col(x, self.win, self.oh, self.ow).reshape(n, g, -1, self.oh * self.ow)  # (N, G, Cg*kh*kw, L)
        y = w.reshape(g, o // g, -1) @ col  # (N, G, Og, L)
        y = y.reshape(n, o, self.oh, self.ow)
        return y if b is None else y + b.reshape(1, o, 1, 1)

    def backward(self, gy):
        if self.fast is not None:
            return self.fast.backward(gy)
        (need_x, need_w, *bias), x, w = self.needs_input_grad, self.x, self.w
        n, c, h, wd = x.shape
        g, o, length = self.groups, w.shape[0], self.oh * self.ow
        gy_g = gy.reshape(n, g, o // g, length)  # (N, G, Og, L)
        gx = gw = None
        if need_w:
            col = im2col(x, self.win, self.oh, self.ow).reshape(n, g, -1, length)
            gw = (gy_g @ col.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w.shape)  # sum_n gy_n col_n^T
        if need_x:
            w_t = w.reshape(g, o // g, -1).transpose(0, 2, 1)  # (G, Cg*kh*kw, Og)
            gx = col2im((w_t @ gy_g).reshape(n, -1, length), self.win, h, wd, self.oh, self.ow)
        return (gx, gw) + tuple(gy.sum(axis=(0, 2, 3)) for _ in bias)


class ConvTranspose2d(Function):
    """y = conv_transpose2d(x, w) + b; x (N, Cin, H, W), w (Cin, Cout/G, kh, kw), b (Cout,)
    -> y (N, Cout, Hout, Wout): conv2d's input gradient with that weight, plus b."""

    def __init__(self, win, out_hw, groups):
        self.win, self.out_hw, self.groups = win, out_hw, groups

    def forward(self, x, w, b=None):
        self.fast = conv_algorithms.choose("conv_transpose2d", self, x, w)
        if self.fast is not None:
            self.fast = self.fast(self)
            return self.fast.forward(x, w, b)
        self.x, self.w = x, w
        n, cin, h, wd = x.shape
        g = self.groups
        w_t = w.reshape(g, cin // g, -1).transpose(0, 2, 1)  # (G, Coutg*kh*kw, Cing)
        col = w_t @ x.reshape(n, g, cin // g, h * wd)  # (N, G, Coutg*kh*kw, H*W)
        y = col2im(col.reshape(n, -1, h * wd), self.win, *self.out_hw, h, wd)
        return y if b is None else y + b.reshape(1, -1, 1, 1)

    def backward(self, gy):
        if self.fast is not None:
            return self.fast.backward(gy)
        (need_x, need_w, *bias), x, w = self.needs_input_grad, self.x, self.w
        n, cin, h, wd = x.shape
        g = self.groups
        col = im2col(gy, self.win, h, wd).reshape(n, g, -1, h * wd)  # (N, G, Coutg*kh*kw, H*W)
        x_g = x.reshape(n, g, cin // g, h * wd)
        gx = (w.reshape(g, cin // g, -1) @ col).reshape(x.shape) if need_x else None
        gw = (x_g @ col.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w.shape) if need_w else None
        return (gx, gw) + tuple(gy.sum(axis=(0, 2, 3)) for _ in bias)


# -- the functions: argument checks and output sizes ----------------------------------------

def _check(op, x, w, b, groups, transposed=False):
    """Types, ranks, dtypes, groups and channel counts, each with a message naming ``op``.
    w is (O, C/G, kh, kw) for conv2d and (C, O/G, kh, kw) for conv_transpose2d."""
    for t, name in ((x, "input"), (w, "weight"), (b, "bias")):
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W) or a 3-D one (C, H, W), "
                         f"got {x.ndim}-D input of shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D weight, got shape {w.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, got dtype {x.dtype}")
    if w.dtype != x.dtype or (b is not None and b.dtype != x.dtype):
        raise TypeError(f"{op}: input, weight and bias must have the same dtype, got input {x.dtype}, "
                        f"weight {w.dtype}" + ("" if b is None else f", bias {b.dtype}"))
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    w_what = "weight's in_channels" if transposed else "weight's out_channels"
    expected_in, out_channels = (w.shape[0], w.shape[1] * groups) if transposed else (w.shape[1] * groups, w.shape[0])
    for what, channels in (("input channels", x.shape[-3]), (w_what, w.shape[0])):
        if channels % groups:
            raise ValueError(f"{op}: {what} ({channels}) are not divisible by groups={groups} "
                             f"(input {x.shape}, weight {w.shape})")
    if x.shape[-3] != expected_in:
        raise ValueError(f"{op}: input has {x.shape[-3]} channels (shape {x.shape}) but weight {w.shape} "
                         f"with groups={groups} expects {expected_in}")
    if b is not None and b.shape != (out_channels,):
        raise ValueError(f"{op}: bias of shape {b.shape} does not match the {out_channels} output channels "
                         f"of weight {w.shape}; expected ({out_channels},)")


def _apply(fn, x, w, b):
    """Apply ``fn`` to a batch; a 3-D (C, H, W) input runs as a batch of one."""
    wb = (w,) if b is None else (w, b)
    if x.ndim == 4:
        return fn.apply(x, *wb)
    return fn.apply(x.unsqueeze(0), *wb).squeeze(0)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, as PyTorch).

    input (N, C, H, W) or (C, H, W), weight (O, C/groups, kh, kw), bias (O,) or None.
    ``padding`` is an int, a pair, 'valid' (none) or 'same' (stride 1 only; an odd total
    padding puts the extra row/column at the bottom/right, as PyTorch).
    Output size: ``geometry.conv_output_size``.
    """
    op = "conv2d"
    _check(op, input, weight, bias, groups)
    kh, kw = weight.shape[2:]
    stride = at_least(pair(stride, "stride", op), 1, "stride", op)
    dilation = at_least(pair(dilation, "dilation", op), 1, "dilation", op)
    (ph, pw), (oh, ow) = conv_output_size(op, input.shape[-2:], (kh, kw), stride, padding, dilation)
    fn = Conv2d(Window(kh, kw, *stride, ph, pw, *dilation), oh, ow, int(groups))
    return _apply(fn, input, weight, bias)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-D transposed convolution: the adjoint of conv2d with respect to its input.

    input (N, Cin, H, W) or (Cin, H, W), weight (Cin, Cout/groups, kh, kw), bias (Cout,).
    Output size: ``geometry.conv_transpose_output_size``; output_padding (< stride or
    < dilation) adds rows/columns at the bottom/right.
    """
    op = "conv_transpose2d"
    _check(op, input, weight, bias, groups, transposed=True)
    kh, kw = weight.shape[2:]
    stride = at_least(pair(stride, "stride", op), 1, "stride", op)
    dilation = at_least(pair(dilation, "dilation", op), 1, "dilation", op)
    (ph, pw), out_hw = conv_transpose_output_size(op, input.shape[-2:], (kh, kw), stride, padding, dilation,
                                                  output_padding)
    fn = ConvTranspose2d(Window(kh, kw, *stride, ph, pw, *dilation), out_hw, int(groups))
    return _apply(fn, input, weight, bias)
