"""Arithmetic with NumPy broadcasting; gradients are summed back to each input's shape."""
from ..autograd import Function


def unbroadcast(g, shape, dtype):
    """Sum ``g`` over the axes that broadcasting added or stretched, to get ``shape``."""
    if g.shape != tuple(shape):
        lead = g.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, s in enumerate(shape) if s == 1 and g.shape[lead + i] != 1
        )
        g = g.sum(axis=axes, keepdims=True).reshape(shape)
    return g.astype(dtype, copy=False)


class _Binary(Function):
    def forward(self, a, b):
        self.a_meta, self.b_meta = (a.shape, a.dtype), (b.shape, b.dtype)
        return self.compute(a, b)

    def reduce(self, ga, gb):
        return (
            unbroadcast(ga, *self.a_meta) if ga is not None and self.needs_input_grad[0] else None,
            unbroadcast(gb, *self.b_meta) if gb is not None and self.needs_input_grad[1] else None,
        )


class Add(_Binary):
    compute = staticmethod(lambda a, b: a + b)

    def backward(self, gy):
        return self.reduce(gy, gy)


class Sub(_Binary):
    compute = staticmethod(lambda a, b: a - b)

    def backward(self, gy):
        return self.reduce(gy, -gy)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        a, b = self.a, self.b
        return (
            unbroadcast(gy * b, a.shape, a.dtype) if self.needs_input_grad[0] else None,
            unbroadcast(gy * a, b.shape, b.dtype) if self.needs_input_grad[1] else None,
        )


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, gy):
        a, b = self.a, self.b
        gb = unbroadcast(-gy * a / (b * b), b.shape, b.dtype) if self.needs_input_grad[1] else None
        return (unbroadcast(gy / b, a.shape, a.dtype) if self.needs_input_grad[0] else None), gb


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class PowScalar(Function):
    """y = x ** c for a constant exponent c."""

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        self.x = x
        return x ** self.c

    def backward(self, gy):
        c = self.c
        return (gy * c * self.x ** (c - 1)).astype(self.x.dtype, copy=False)


class Pow(Function):
    """y = a ** b with both sides differentiable: dy/da = b a^(b-1), dy/db = a^b log a."""

    def forward(self, a, b):
        self.a, self.b = a, b
        self.y = a ** b
        return self.y

    def backward(self, gy):
        a, b, xp = self.a, self.b, self.xp
        ga = unbroadcast(gy * b * a ** (b - 1), a.shape, a.dtype) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            # a^b log a -> 0 where a == 0 (the limit for b > 0), as PyTorch
            loga = xp.log(xp.where(a > 0, a, 1))
            gb = unbroadcast(gy * self.y * loga, b.shape, b.dtype)
        return ga, gb


class MatMul(Function):
    """Batched matrix product with NumPy's rules (1-D operands are promoted and squeezed)."""

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes {a.shape} and {b.shape}")
        k_a = a.shape[-1]
        k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if k_a != k_b:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align ({k_a} != {k_b})")
        self.a, self.b = a, b
        return a @ b

    def backward(self, gy):
        xp = self.xp
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a  # (..., n, k)
        b2 = b[:, None] if b.ndim == 1 else b  # (..., k, m)
        g2 = gy
        if a.ndim == 1:
            g2 = xp.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = g2 @ xp.swapaxes(b2, -1, -2)
            ga = unbroadcast(ga, a2.shape, a.dtype).reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = xp.swapaxes(a2, -1, -2) @ g2
            gb = unbroadcast(gb, b2.shape, b.dtype).reshape(b.shape)
        return ga, gb


def add(a, b):
    return Add().apply(a, b)


def sub(a, b):
    return Sub().apply(a, b)


def mul(a, b):
    return Mul().apply(a, b)


def div(a, b):
    return Div().apply(a, b)


def neg(x):
    return Neg().apply(x)


def pow(a, b):
    from ..tensor import Tensor

    if isinstance(a, Tensor) and not isinstance(b, Tensor):
        return PowScalar(b).apply(a)
    return Pow().apply(a, b)


def matmul(a, b):
    return MatMul().apply(a, b)
