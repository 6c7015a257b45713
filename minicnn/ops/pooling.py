"""Pooling over the H, W plane of each (n, c): max, average, adaptive, and max-unpooling.

Window geometry (PyTorch's): output pixel (oy, ox) reads input rows
``oy*sh - ph + i*dh`` for i < kh (columns alike). Max pooling treats padding as -inf,
average pooling as 0. The number of windows along an axis is ``geometry.output_size``.

The window loops are kernels (``backend.kernels(x)``: numba on the CPU, CUDA C on the
GPU); this file checks arguments, computes output sizes, and wires forward to backward.
Every op takes (N, C, H, W) or, like PyTorch, an unbatched (C, H, W) input.
"""
import numpy as np

from .. import backend
from ..autograd import Function
from ..geometry import output_size, pair


# -- arguments and sizes -------------------------------------------------------


def _window_args(op, kernel_size, stride, padding, dilation=1, half_kernel_padding=True):
    """Validated (kh, kw), (sh, sw), (ph, pw), (dh, dw); stride None means kernel_size."""
    k = pair(kernel_size, "kernel_size", op)
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) else pair(stride, "stride", op)
    p, d = pair(padding, "padding", op), pair(dilation, "dilation", op)
    for name, v, least in (("kernel_size", k, 1), ("stride", s, 1), ("dilation", d, 1), ("padding", p, 0)):
        if min(v) < least:
            raise ValueError(f"{op}: {name} must be >= {least}, got {v}")
    if half_kernel_padding and (p[0] > k[0] // 2 or p[1] > k[1] // 2):
        raise ValueError(f"{op}: padding {p} must be at most half of kernel_size {k} (PyTorch's rule)")
    return k, s, p, d


def _batched(x, op):
    """(C, H, W) or (N, C, H, W) floating-point array -> the 4-D array and whether it was 3-D."""
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got {x.dtype}")
    if 0 in x.shape[-3:]:
        raise ValueError(f"{op}: input of shape {x.shape} has an empty channel or spatial dimension")
    return (x[None], True) if x.ndim == 3 else (x, False)


def _output_hw(op, shape, k, s, p, d, ceil_mode):
    h, w = shape[-2:]
    out = (output_size(h, k[0], s[0], p[0], d[0], ceil_mode), output_size(w, k[1], s[1], p[1], d[1], ceil_mode))
    if min(out) < 1:
        span = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
        raise ValueError(
            f"{op}: input of shape {tuple(shape)} padded to {h + 2 * p[0]}x{w + 2 * p[1]} is smaller "
            f"than the window extent {span[0]}x{span[1]} (kernel_size {k}, dilation {d}, stride {s}, "
            f"ceil_mode={ceil_mode}); the output would be {out[0]}x{out[1]}")
    return out


# -- max pooling ---------------------------------------------------------------
class MaxPool2d(Function):
    """y[n, c, oy, ox] = max over the window (padding = -inf); idx = r*W + c of the
    first maximum. Backward: dx.flat[idx] += dy per plane (ties: first argmax only;
    overlapping windows that pick the same pixel add up). With dilation a window can
    lie wholly in the padding: its output is -inf, its index -1, and it passes no
    gradient (PyTorch returns an index outside the plane there)."""

    non_differentiable_outputs = (1,)

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        self.k, self.s, self.p, self.d = _window_args("max_pool2d", kernel_size, stride, padding, dilation)
        self.ceil_mode = bool(ceil_mode)

    def forward(self, x):
        x, self.unbatched = _batched(x, "max_pool2d")
        oh, ow = _output_hw("max_pool2d", x.shape, self.k, self.s, self.p, self.d, self.ceil_mode)
        y, self.idx = backend.kernels(x).max_pool2d_forward(
            self.xp.ascontiguousarray(x), *self.k, *self.s, *self.p, *self.d, oh, ow)
        self.hw = x.shape[2:]
        return (y[0], self.idx[0]) if self.unbatched else (y, self.idx)

    def backward(self, gy, _gidx):
        gy = self.xp.ascontiguousarray(gy[None] if self.unbatched else gy)
        gx = backend.kernels(gy).max_pool2d_backward(gy, self.idx, *self.hw, *self.k, *self.s, *self.p, *self.d)
        return gx[0] if self.unbatched else gx


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling; (N, C, H, W) -> (N, C, oh, ow) [, int64 indices into each H*W plane]."""
    y, idx = MaxPool2d(kernel_size, stride, padding, dilation, ceil_mode).apply(input)
    return (y, idx) if return_indices else y


# -- average pooling -----------------------------------------------------------
class AvgPool2d(Function):
    """y = (sum of the window's real pixels) / divisor, PyTorch's divisor rule:
    divisor_override if given, else the window's size clipped to the padded input
    (count_include_pad=True) or its number of real pixels (False)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        self.k, self.s, self.p, _ = _window_args("avg_pool2d", kernel_size, stride, padding)
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)
        if divisor_override is not None and (not isinstance(divisor_override, (int, np.integer))
                                             or divisor_override == 0):
            raise ValueError(f"avg_pool2d: divisor_override must be a non-zero int or None, got {divisor_override!r}")
        self.divisor = None if divisor_override is None else int(divisor_override)

    def forward(self, x):
        x, self.unbatched = _batched(x, "avg_pool2d")
        self.out = _output_hw("avg_pool2d", x.shape, self.k, self.s, self.p, (1, 1), self.ceil_mode)
        y = backend.kernels(x).avg_pool2d_forward(self.xp.ascontiguousarray(x), *self.k, *self.s, *self.p,
                                                  *self.out, self.count_include_pad, self.divisor)
        self.hw = x.shape[2:]
        return y[0] if self.unbatched else y

    def backward(self, gy):
        gy = self.xp.ascontiguousarray(gy[None] if self.unbatched else gy)
        gx = backend.kernels(gy).avg_pool2d_backward(gy, *self.hw, *self.k, *self.s, *self.p, *self.out,
                                                     self.count_include_pad, self.divisor)
        return gx[0] if self.unbatched else gx


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling; (N, C, H, W) -> (N, C, oh, ow); padding counts as zeros."""
    return AvgPool2d(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override).apply(input)


# -- adaptive pooling ----------------------------------------------------------
def _adaptive_size(output_size, hw, op):
    """output_size (int, pair, None entries keep the input's size) -> (oh, ow)."""
    pair = (output_size, output_size) if output_size is None or isinstance(output_size, (int, np.integer)) \
        else tuple(output_size)
    if len(pair) != 2:
        raise TypeError(f"{op}: output_size must be an int, None, or a pair, got {output_size!r}")
    out = tuple(int(hw[i]) if v is None else v for i, v in enumerate(pair))
    if not all(isinstance(v, (int, np.integer)) and v >= 1 for v in out):
        raise ValueError(f"{op}: output_size must be positive ints (or None), got {output_size!r}")
    return int(out[0]), int(out[1])


def adaptive_bins(size, out):
    """PyTorch's bins: bin i covers [floor(i*size/out), ceil((i+1)*size/out))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _averaging_matrix(size, out, xp, dtype):
    """(out, size) matrix whose row i averages bin i."""
    m = np.zeros((out, size))
    for i, (a, b) in enumerate(adaptive_bins(size, out)):
        m[i, a:b] = 1.0 / (b - a)
    return xp.asarray(m.astype(dtype))


class AdaptiveAvgPool2d(Function):
    """Averages over PyTorch's adaptive bins. A bin is a rectangle, so the op is
    separable: y = A_h x A_w^T with A the (out, size) bin-averaging matrices, and
    the backward is its transpose, dx = A_h^T dy A_w. Global pooling (1x1) is a mean."""

    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x):
        x, self.unbatched = _batched(x, "adaptive_avg_pool2d")
        xp, (h, w) = self.xp, x.shape[2:]
        oh, ow = _adaptive_size(self.output_size, (h, w), "adaptive_avg_pool2d")
        if (oh, ow) == (1, 1):
            self.hw, self.a_h = (h, w), None
            y = x.mean(axis=(2, 3), keepdims=True)
        else:
            self.a_h = _averaging_matrix(h, oh, xp, x.dtype)
            self.a_w = _averaging_matrix(w, ow, xp, x.dtype)
            y = self.a_h @ x @ self.a_w.T
        return y[0] if self.unbatched else y

    def backward(self, gy):
        xp = self.xp
        gy = gy[None] if self.unbatched else gy
        if self.a_h is None:  # global pooling: every pixel gets dy / (H*W)
            n, c = gy.shape[:2]
            gx = xp.empty((n, c) + self.hw, gy.dtype)
            gx[...] = gy / (self.hw[0] * self.hw[1])
        else:
            gx = self.a_h.T @ gy @ self.a_w
        return gx[0] if self.unbatched else gx


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed (oh, ow) whatever the input size; 1 = global average pooling."""
    return AdaptiveAvgPool2d(output_size).apply(input)


class AdaptiveMaxPool2d(Function):
    """Max over PyTorch's adaptive bins (which may overlap); idx = r*W + c of the
    first maximum (first NaN if any). Written against xp with one step per bin,
    which is cheap because the output is small (typically 1x1 to 7x7)."""

    non_differentiable_outputs = (1,)

    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x):
        x, self.unbatched = _batched(x, "adaptive_max_pool2d")
        xp, (n, c, h, w) = self.xp, x.shape
        oh, ow = _adaptive_size(self.output_size, (h, w), "adaptive_max_pool2d")
        y = xp.empty((n, c, oh, ow), x.dtype)
        idx = xp.empty((n, c, oh, ow), np.int64)
        for i, (r0, r1) in enumerate(adaptive_bins(h, oh)):
            for j, (c0, c1) in enumerate(adaptive_bins(w, ow)):
                window = x[:, :, r0:r1, c0:c1].reshape(n, c, (r1 - r0) * (c1 - c0))  # row-major order
                k = window.argmax(axis=2)
                y[:, :, i, j] = xp.take_along_axis(window, k[..., None], axis=2)[..., 0]
                idx[:, :, i, j] = (r0 + k // (c1 - c0)) * w + c0 + k % (c1 - c0)
        self.idx, self.hw = idx, (h, w)
        return (y[0], idx[0]) if self.unbatched else (y, idx)

    def backward(self, gy, _gidx):
        xp, (h, w) = self.xp, self.hw
        gy = gy[None] if self.unbatched else gy
        n, c, oh, ow = gy.shape
        gx = xp.zeros((n * c, h * w), gy.dtype)
        planes = xp.arange(n * c)
        idx, gy = self.idx.reshape(n * c, oh * ow), gy.reshape(n * c, oh * ow)
        for k in range(oh * ow):  # one index per plane per step, so no duplicate writes
            gx[planes, idx[:, k]] += gy[:, k]
        gx = gx.reshape(n, c, h, w)
        return gx[0] if self.unbatched else gx


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max pooling to a fixed (oh, ow) over PyTorch's adaptive bins."""
    y, idx = AdaptiveMaxPool2d(output_size).apply(input)
    return (y, idx) if return_indices else y


# -- max unpooling -------------------------------------------------------------
def unpool_output_size(hw, kernel, stride, padding, output_size, op="max_unpool2d"):
    """PyTorch's rule: default (h - 1)*s - 2p + k per axis; an explicit output_size
    (its last two entries) must lie strictly within stride of that default."""
    default = tuple((hw[i] - 1) * stride[i] - 2 * padding[i] + kernel[i] for i in range(2))
    if output_size is None:
        out = default
    else:
        if len(tuple(output_size)) not in (2, 3, 4):
            raise ValueError(f"{op}: output_size must have 2 entries (or end with them), got {tuple(output_size)}")
        out = tuple(int(v) for v in output_size)[-2:]
        for i in range(2):
            if not default[i] - stride[i] < out[i] < default[i] + stride[i]:
                raise ValueError(f"{op}: output_size {tuple(output_size)}: dim {i} must be between "
                                 f"{default[i] - stride[i]} and {default[i] + stride[i]} (exclusive) "
                                 f"for input size {tuple(hw)}")
    if min(out) < 1:
        raise ValueError(f"{op}: output size {out} (from input {tuple(hw)}) must be positive")
    return out


class MaxUnpool2d(Function):
    """Inverse of max pooling's selection: y = zeros (N, C, oh, ow) with
    y.flat[idx] = x per plane; backward gathers dx = dy.flat[idx]."""

    def __init__(self, kernel_size, stride=None, padding=0, output_size=None):
        # no padding <= kernel/2 rule here: PyTorch's max_unpool2d has none
        self.k, self.s, self.p, _ = _window_args("max_unpool2d", kernel_size, stride, padding,
                                                 half_kernel_padding=False)
        self.output_size = output_size

    def forward(self, x, idx):
        if idx.dtype != np.int64:
            raise TypeError(f"max_unpool2d: indices must be int64 (as max_pool2d returns them), got {idx.dtype}")
        if idx.shape != x.shape:
            raise ValueError(f"max_unpool2d: indices of shape {idx.shape} must have the input's shape {x.shape}")
        x, self.unbatched = _batched(x, "max_unpool2d")
        idx = idx[None] if self.unbatched else idx
        oh, ow = unpool_output_size(x.shape[2:], self.k, self.s, self.p, self.output_size)
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= oh * ow):
            raise IndexError(f"max_unpool2d: indices must lie in [0, {oh * ow}) for an output of "
                             f"{oh}x{ow}, got values in [{int(idx.min())}, {int(idx.max())}]")
        self.idx = idx = self.xp.ascontiguousarray(idx)
        y = backend.kernels(x).max_unpool2d_forward(self.xp.ascontiguousarray(x), idx, oh, ow)
        return y[0] if self.unbatched else y

    def backward(self, gy):
        gy = self.xp.ascontiguousarray(gy[None] if self.unbatched else gy)
        gx = backend.kernels(gy).max_unpool2d_backward(gy, self.idx)
        return (gx[0] if self.unbatched else gx), None


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Places each input value at its max_pool2d index in a zero (N, C, oh, ow) output."""
    return MaxUnpool2d(kernel_size, stride, padding, output_size).apply(input, indices)
