"""Activations and the (log-)softmax, written to be numerically stable."""
from ..autograd import Function


class ReLU(Function):
    def forward(self, x):
        self.positive = x > 0
        return x * self.positive

    def backward(self, gy):
        return gy * self.positive


class LeakyReLU(Function):
    def __init__(self, slope):
        self.slope = slope

    def forward(self, x):
        self.positive = x > 0
        return self.xp.where(self.positive, x, x * x.dtype.type(self.slope))

    def backward(self, gy):
        return self.xp.where(self.positive, gy, gy * gy.dtype.type(self.slope))


class Sigmoid(Function):
    def forward(self, x):
        xp = self.xp
        e = xp.exp(-xp.abs(x))  # never overflows
        self.y = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
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
    if not -ndim <= dim < ndim:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dimensions")
    return dim % ndim


def relu(x):
    return ReLU().apply(x)


def leaky_relu(x, negative_slope=0.01):
    return LeakyReLU(negative_slope).apply(x)


def sigmoid(x):
    return Sigmoid().apply(x)


def tanh(x):
    return Tanh().apply(x)


def softmax(x, dim):
    return Softmax(_axis(dim, x.ndim, "softmax")).apply(x)


def log_softmax(x, dim):
    return LogSoftmax(_axis(dim, x.ndim, "log_softmax")).apply(x)
