"""Element-wise math: exp, log, sqrt, abs, clamp, where."""
from ..autograd import Function
from .arithmetic import unbroadcast


class Exp(Function):
    def forward(self, x):
        self.y = self.xp.exp(x)
        return self.y

    def backward(self, gy):
        return gy * self.y


class Log(Function):
    def forward(self, x):
        self.x = x
        return self.xp.log(x)

    def backward(self, gy):
        return gy / self.x


class Sqrt(Function):
    def forward(self, x):
        self.y = self.xp.sqrt(x)
        return self.y

    def backward(self, gy):
        return gy / (2 * self.y)


class Abs(Function):
    def forward(self, x):
        self.sign = self.xp.sign(x)  # d|x|/dx = sign(x), 0 at 0 as PyTorch
        return self.xp.abs(x)

    def backward(self, gy):
        return gy * self.sign


class Clamp(Function):
    """min(max(x, lo), hi); the gradient passes where x is inside [lo, hi]."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def forward(self, x):
        xp = self.xp
        inside = xp.ones(x.shape, bool)
        if self.lo is not None:
            inside &= x >= self.lo
        if self.hi is not None:
            inside &= x <= self.hi
        self.inside = inside
        return xp.clip(x, self.lo, self.hi).astype(x.dtype, copy=False)

    def backward(self, gy):
        return gy * self.inside


class Where(Function):
    """cond ? a : b, with ``cond`` a constant boolean array."""

    def __init__(self, cond):
        self.cond = cond

    def forward(self, a, b):
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
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    return Clamp(min, max).apply(x)


clip = clamp


def where(condition, a, b):
    from ..tensor import Tensor, as_tensor

    like = a if isinstance(a, Tensor) else b
    cond = condition.data if isinstance(condition, Tensor) else condition
    if not isinstance(like, Tensor):
        like = as_tensor(a)
    return Where(cond).apply(as_tensor(a, like), as_tensor(b, like))
