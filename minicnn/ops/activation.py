"""Activations and the (log-)softmax, written to be numerically stable."""
from .. import backend
from ..autograd import Function
from .shape import _axis as _shape_axis


class ReLU(Function):
    """y = max(x, 0); the gradient passes where y > 0. Only y is kept for backward."""

    def forward(self, x):
        relu = getattr(backend.kernels(x), "relu", None)  # the CPU has a multi-threaded pass
        self.y = relu(x) if relu is not None else self.xp.maximum(x, 0)
        return self.y

    def backward(self, gy):
        return backend.kernels(gy).relu_backward(gy, self.y)  # one fused pass


class LeakyReLU(Function):
    def __init__(self, slope):
        self.slope = slope

    def forward(self, x):
        self.positive = x > 0
        return self.xp.where(self.positive, x, x * x.dtype.type(self.slope))

    def backward(self, gy):
        return self.xp.where(self.positive, gy, gy * gy.dtype.type(self.slope))


class PReLU(Function):
    """y = x if x > 0 else w * x, with one learned slope w (1,) or one per channel (C,)
    (channel axis 1); the slope's gradient sums gy * x over the negative positions it covers."""

    def forward(self, x, w):
        # w (1,) or (C,) -> broadcastable (1, C, 1, ...) against x (N, C, *)
        self.w = w.reshape((1, -1) + (1,) * (x.ndim - 2)) if x.ndim >= 2 and w.size > 1 else w
        self.x, self.positive = x, x > 0
        return self.xp.where(self.positive, x, self.w * x)

    def backward(self, gy):
        xp = self.xp
        zero = gy.dtype.type(0)
        gx = xp.where(self.positive, gy, gy * self.w) if self.needs_input_grad[0] else None
        gw = None
        if self.needs_input_grad[1]:
            neg = xp.where(self.positive, zero, gy * self.x)
            gw = neg.sum(axis=(0,) + tuple(range(2, neg.ndim))) if self.w.size > 1 else neg.sum().reshape(1)
        return gx, gw


class Sigmoid(Function):
    def forward(self, x):
        xp = self.xp
        # 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) for x < 0: exp never overflows
        e = xp.exp(-xp.abs(x))
        self.y = xp.where(x >= 0, 1, e) / (1 + e)
        return self.y

    def backward(self, gy):
        return gy * self.y * (1 - self.y)


class Tanh(Function):
    def forward(self, x):
        self.y = self.xp.tanh(x)
        return self.y

    def backward(self, gy):
        return gy * (1 - self.y * self.y)


class Softmax(Function):
    """y = exp(x - max) / sum exp(x - max) along ``axis``."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        e = self.xp.exp(x - x.max(axis=self.axis, keepdims=True))
        self.y = e / e.sum(axis=self.axis, keepdims=True)
        return self.y

    def backward(self, gy):
        y = self.y
        return y * (gy - (gy * y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    """y = x - max - log sum exp(x - max) along ``axis``."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        xp = self.xp
        shifted = x - x.max(axis=self.axis, keepdims=True)
        self.y = shifted - xp.log(xp.exp(shifted).sum(axis=self.axis, keepdims=True))
        return self.y

    def backward(self, gy):
        return gy - self.xp.exp(self.y) * gy.sum(axis=self.axis, keepdims=True)


def _axis(dim, ndim, op):
    if dim is None:
        raise TypeError(f"{op}: dim must be given (PyTorch's implicit dim choice is deprecated)")
    return _shape_axis(dim, ndim, op)


def _over(fn, x, dim, dtype, op):
    """softmax/log_softmax: a 0-d input is one value along its one dim, as in PyTorch."""
    x = x if dtype is None else x.to(dtype=dtype)
    axis = _axis(dim, x.ndim, op)
    return fn(axis).apply(x) if x.ndim else fn(0).apply(x.reshape(1)).reshape(())


def relu(x):
    return ReLU().apply(x)


def leaky_relu(x, negative_slope=0.01):
    return LeakyReLU(negative_slope).apply(x)


def prelu(input, weight):
    """PReLU with weight (1,) shared by all values or (C,) one slope per channel (axis 1)."""
    n = weight.numel()
    channels = input.shape[1] if input.ndim >= 2 else 1
    if weight.ndim != 1 or n not in (1, channels):
        raise ValueError(f"prelu: weight of shape {tuple(weight.shape)} does not fit an input of shape "
                         f"{tuple(input.shape)}: expected 1 slope or one per channel ({channels},)")
    return PReLU().apply(input, weight)


def sigmoid(x):
    return Sigmoid().apply(x)


def tanh(x):
    return Tanh().apply(x)


def softmax(x, dim, dtype=None):
    """``dtype``: cast x first (e.g. float64 for a float32 input), as PyTorch's."""
    return _over(Softmax, x, dim, dtype, "softmax")


def log_softmax(x, dim, dtype=None):
    return _over(LogSoftmax, x, dim, dtype, "log_softmax")
