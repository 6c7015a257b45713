"""Element-wise math: exp, log, sqrt, abs, clamp, where."""
import numbers

from .. import backend
from ..autograd import Function
from .arithmetic import check_broadcast, unbroadcast


class Exp(Function):
    """y = e^x, dy/dx = y."""

    def forward(self, x):
        self.y = self.xp.exp(x)
        return self.y

    def backward(self, gy):
        return gy * self.y


class Log(Function):
    """y = ln x, dy/dx = 1 / x."""

    def forward(self, x):
        self.x = x
        return self.xp.log(x)

    def backward(self, gy):
        return gy / self.x


class Sqrt(Function):
    """y = sqrt(x), dy/dx = 1 / (2 y)."""

    def forward(self, x):
        self.y = self.xp.sqrt(x)
        return self.y

    def backward(self, gy):
        return gy / (2 * self.y)


class Abs(Function):
    """y = |x|, dy/dx = sign(x) (0 at 0, as PyTorch)."""

    def forward(self, x):
        self.x = x
        return self.xp.abs(x)

    def backward(self, gy):
        return gy * self.xp.sign(self.x)


class Clamp(Function):
    """min(max(x, lo), hi); the gradient passes where lo <= x <= hi (bounds inclusive, as PyTorch)."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def forward(self, x):
        lo, hi = self.lo, self.hi
        if lo is None:
            self.inside = x <= hi
        elif hi is None:
            self.inside = x >= lo
        else:
            self.inside = (x >= lo) & (x <= hi)
        return self.xp.clip(x, lo, hi)

    def backward(self, gy):
        return gy * self.inside


class Where(Function):
    """cond ? a : b, with ``cond`` a constant boolean array; all three broadcast together."""

    def __init__(self, cond):
        self.cond = cond

    def forward(self, a, b):
        check_broadcast("where", self.cond.shape, a.shape, b.shape)
        self.a_meta, self.b_meta = (a.shape, a.dtype), (b.shape, b.dtype)
        return self.xp.where(self.cond, a, b)

    def backward(self, gy):
        zero = gy.dtype.type(0)
        ga = unbroadcast(self.xp.where(self.cond, gy, zero), *self.a_meta) if self.needs_input_grad[0] else None
        gb = unbroadcast(self.xp.where(self.cond, zero, gy), *self.b_meta) if self.needs_input_grad[1] else None
        return ga, gb


def exp(x):
    return Exp().apply(x)


def log(x):
    return Log().apply(x)


def sqrt(x):
    return Sqrt().apply(x)


def abs(x):
    return Abs().apply(x)


def clamp(x, min=None, max=None):
    """Values below ``min`` become ``min``, above ``max`` become ``max`` (numbers or tensors that
    broadcast with x; either may be None). A tensor bound gets the gradient where it won."""
    from ..tensor import Tensor

    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        y = x
        if min is not None:
            y = where(y.array < (min.array if isinstance(min, Tensor) else min), min, y)
        if max is not None:
            y = where(y.array > (max.array if isinstance(max, Tensor) else max), max, y)
        return y
    bounds = []
    for name, v in (("min", min), ("max", max)):
        if v is not None and not isinstance(v, numbers.Real):
            raise TypeError(f"clamp: {name} must be a number or a Tensor, got {type(v).__name__}")
        bounds.append(v.item() if hasattr(v, "item") else v)  # Python numbers keep float32 float32
    return Clamp(*bounds).apply(x)


clip = clamp


def where(condition, a, b):
    """Element-wise ``a`` where ``condition`` holds, else ``b`` (``a``/``b`` tensors or numbers)."""
    from ..tensor import Tensor, as_tensor

    cond = condition.array if isinstance(condition, Tensor) else condition
    like = a if isinstance(a, Tensor) else b
    if not isinstance(like, Tensor):
        raise TypeError("where: at least one of the two value arguments must be a Tensor")
    cond = backend.array_module(like.array).asarray(cond)
    if cond.dtype != bool:
        raise TypeError(f"where: condition must be boolean, got dtype {cond.dtype}")
    return Where(cond).apply(as_tensor(a, like, "where"), as_tensor(b, like, "where"))
