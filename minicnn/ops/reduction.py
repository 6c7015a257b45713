"""Reductions over axes: sum, mean, max/min (and their indices), var."""
import builtins
import numbers
from collections import namedtuple

from ..autograd import Function

MaxResult = namedtuple("MaxResult", ["values", "indices"])


def normalize_axes(dim, ndim, op):
    """``dim`` (None, int or sequence) as a sorted tuple of non-negative axes; None and an empty
    sequence mean every axis, as in PyTorch. Bools and repeated axes are refused, as there."""
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, numbers.Integral) else dim
    if not isinstance(dims, (tuple, list)) or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool)
                                                       for d in dims):
        raise TypeError(f"{op}: dim must be an int or a tuple of ints, got {dim!r}")
    out, n = [], builtins.max(ndim, 1)
    for d in dims:
        if not -n <= d < n:
            raise IndexError(f"{op}: dim {d} is out of range for a tensor with {ndim} dimensions")
        if d % n in out:
            raise ValueError(f"{op}: dim {d % n} appears more than once in {tuple(dims)}")
        out.append(d % n)
    return tuple(sorted(out)) if ndim else ()


def _restore(gy, axes, keepdims, xp):
    """Put the reduced axes back as size-1 axes so ``gy`` broadcasts against the input."""
    return gy if keepdims or not axes else xp.expand_dims(gy, axes)


class Sum(Function):
    """y = sum of x over ``axes``; every x[i] gets the gradient of the sum it fell into."""

    def __init__(self, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x):
        self.x_shape = x.shape
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        return self.xp.broadcast_to(_restore(gy, self.axes, self.keepdims, self.xp), self.x_shape)


class Mean(Sum):
    """y = sum / count over ``axes``; dL/dx = broadcast(gy) / count."""

    def forward(self, x):
        self.count = 1
        for a in self.axes:
            self.count *= x.shape[a]
        return super().forward(x) / x.dtype.type(self.count)

    def backward(self, gy):
        return super().backward(gy / gy.dtype.type(self.count))


class MaxMin(Function):
    """Max (or min) over axes; ties share the gradient equally (as ``torch.amax``)."""

    def __init__(self, axes, keepdims, use_max):
        self.axes, self.keepdims, self.use_max = axes, keepdims, use_max

    def forward(self, x):
        if x.size == 0:
            raise ValueError(f"{'max' if self.use_max else 'min'}: cannot reduce an empty tensor of shape {x.shape}")
        y = (x.max if self.use_max else x.min)(axis=self.axes, keepdims=True)
        self.mask = x == y  # (x.shape) bool: where the extremum sits
        return y if self.keepdims else y.reshape([s for i, s in enumerate(y.shape) if i not in self.axes])

    def backward(self, gy):
        gy = _restore(gy, self.axes, self.keepdims, self.xp)
        share = self.mask.sum(axis=self.axes, keepdims=True).astype(gy.dtype)
        return self.mask * (gy / share)


class MaxAlong(Function):
    """(values, indices) of the max (or min) along one axis, as ``torch.max(x, dim)``:
    the gradient goes to the returned index only (the first one among ties)."""

    non_differentiable_outputs = (1,)

    def __init__(self, axis, keepdims, use_max):
        self.axis, self.keepdims, self.use_max = axis, keepdims, use_max

    def forward(self, x):
        if x.shape[self.axis] == 0:
            raise ValueError(f"{'max' if self.use_max else 'min'}: cannot reduce over dim {self.axis} "
                             f"of size 0 (shape {x.shape})")
        idx = (x.argmax if self.use_max else x.argmin)(axis=self.axis, keepdims=True)
        values = self.xp.take_along_axis(x, idx, self.axis)
        self.x_shape, self.idx = x.shape, idx
        if not self.keepdims:
            values, idx = values.squeeze(self.axis), idx.squeeze(self.axis)
        return values, idx.astype("int64", copy=False)

    def backward(self, gy, _):
        xp = self.xp
        gy = _restore(gy, (self.axis,), self.keepdims, xp)
        positions = xp.arange(self.x_shape[self.axis]).reshape(
            [-1 if a == self.axis else 1 for a in range(len(self.x_shape))])
        return (positions == self.idx) * gy  # (x.shape): gy at the chosen index, 0 elsewhere


def sum(x, dim=None, keepdim=False):
    return Sum(normalize_axes(dim, x.ndim, "sum"), keepdim).apply(x)


def mean(x, dim=None, keepdim=False):
    return Mean(normalize_axes(dim, x.ndim, "mean"), keepdim).apply(x)


def var(x, dim=None, unbiased=True, keepdim=False, *, correction=None):
    """Variance over ``dim``: the sum of squared deviations / (n - correction); ``unbiased``
    means correction 1 (PyTorch's argument order: dim, unbiased, keepdim)."""
    if isinstance(unbiased, numbers.Integral) and not isinstance(unbiased, bool):
        raise TypeError(f"var: unbiased must be a bool, got {unbiased!r} (the order is dim, unbiased, keepdim)")
    axes = normalize_axes(dim, x.ndim, "var")
    n = 1
    for a in axes:
        n *= x.shape[a]
    ddof = (1 if unbiased else 0) if correction is None else correction
    d = x - mean(x, axes, keepdim=True)
    return sum(d * d, axes, keepdim) / builtins.max(n - ddof, 1)


def std(x, dim=None, unbiased=True, keepdim=False, *, correction=None):
    """The square root of ``var``, with the same arguments."""
    from .elementwise import sqrt

    return sqrt(var(x, dim, unbiased, keepdim, correction=correction))


def _extremum(x, dim, keepdim, use_max):
    name = "max" if use_max else "min"
    if dim is None or not isinstance(dim, numbers.Integral):
        return MaxMin(normalize_axes(dim, x.ndim, name), keepdim, use_max).apply(x)
    (axis,) = normalize_axes(dim, x.ndim, name)
    return MaxResult(*MaxAlong(axis, keepdim, use_max).apply(x))


def max(x, dim=None, keepdim=False):
    """Largest value; with an int ``dim``, a (values, indices) pair; with a Tensor in place of
    ``dim``, the element-wise maximum of the two (as PyTorch)."""
    from ..tensor import Tensor
    from .arithmetic import maximum

    return maximum(x, dim) if isinstance(dim, Tensor) else _extremum(x, dim, keepdim, True)


def min(x, dim=None, keepdim=False):
    """Smallest value; as ``max``."""
    from ..tensor import Tensor
    from .arithmetic import minimum

    return minimum(x, dim) if isinstance(dim, Tensor) else _extremum(x, dim, keepdim, False)


def amax(x, dim=None, keepdim=False):
    return MaxMin(normalize_axes(dim, x.ndim, "amax"), keepdim, True).apply(x)


def amin(x, dim=None, keepdim=False):
    return MaxMin(normalize_axes(dim, x.ndim, "amin"), keepdim, False).apply(x)


def _arg(x, dim, keepdim, name):
    from ..tensor import Tensor

    if dim is None:
        return Tensor._make(getattr(x.array.reshape(-1), name)().astype("int64"))
    (axis,) = normalize_axes(dim, x.ndim, name)
    return Tensor._make(getattr(x.array, name)(axis=axis, keepdims=keepdim).astype("int64"))


def argmax(x, dim=None, keepdim=False):
    return _arg(x, dim, keepdim, "argmax")


def argmin(x, dim=None, keepdim=False):
    return _arg(x, dim, keepdim, "argmin")
