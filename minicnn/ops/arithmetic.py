"""Arithmetic with NumPy broadcasting; gradients are summed back to each input's shape."""
import numbers

import numpy as np

from .. import backend
from ..autograd import Function


def unbroadcast(g, shape, dtype):
    """Sum ``g`` over the axes that broadcasting added or stretched, to get ``shape``.

    If y = f(a) where a of ``shape`` was broadcast to y.shape, every copy of a[i]
    contributed to y, so dL/da[i] is the sum of dL/dy over those copies.
    """
    if g.shape != tuple(shape):
        lead = g.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, s in enumerate(shape) if s == 1 and g.shape[lead + i] != 1
        )
        g = g.sum(axis=axes, keepdims=True).reshape(shape)
    return g.astype(dtype, copy=False)


def check_broadcast(op, *shapes):
    """Raise a ValueError naming ``op`` and the shapes unless they broadcast together."""
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        listed = " and ".join(str(tuple(s)) for s in shapes)
        raise ValueError(f"{op}: shapes {listed} cannot be broadcast together (aligned from the "
                         "right, each pair of sizes must be equal or contain a 1)") from None


def promote_types(a, b):
    """PyTorch's promotion of two tensor dtypes: across kinds (bool < integer < floating) the
    higher kind's dtype wins as it is (float32 with int64 stays float32; NumPy would give
    float64); within a kind the wider one."""
    kind = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
    a, b = np.dtype(a), np.dtype(b)
    if kind[a.kind] != kind[b.kind]:
        return a if kind[a.kind] > kind[b.kind] else b
    return np.result_type(a, b)


class _Binary(Function):
    """y = a (op) b element-wise with broadcasting; subclasses give ``op`` and ``compute``."""

    op = ""

    def forward(self, a, b):
        self.a_meta, self.b_meta = (a.shape, a.dtype), (b.shape, b.dtype)
        dtype = promote_types(a.dtype, b.dtype)
        a, b = a.astype(dtype, copy=False), b.astype(dtype, copy=False)
        try:
            return self.compute(a, b)
        except ValueError:
            check_broadcast(self.op, a.shape, b.shape)
            raise

    def reduce(self, ga, gb):
        """The gradients with respect to (a, b), summed back to their shapes."""
        return (
            unbroadcast(ga, *self.a_meta) if ga is not None and self.needs_input_grad[0] else None,
            unbroadcast(gb, *self.b_meta) if gb is not None and self.needs_input_grad[1] else None,
        )


class Add(_Binary):
    op = "add"
    compute = staticmethod(lambda a, b: a + b)

    def backward(self, gy):
        return self.reduce(gy, gy)


class Sub(_Binary):
    op = "sub"
    compute = staticmethod(lambda a, b: a - b)

    def backward(self, gy):
        return self.reduce(gy, -gy if self.needs_input_grad[1] else None)


class Mul(_Binary):
    """y = a * b: dy/da = b, dy/db = a (each side saved only if the other needs it)."""

    op = "mul"

    def compute(self, a, b):
        y = a * b
        self.a = a if self.needs_input_grad[1] else None
        self.b = b if self.needs_input_grad[0] else None
        return y

    def backward(self, gy):
        return self.reduce(gy * self.b if self.b is not None else None,
                           gy * self.a if self.a is not None else None)


class Div(_Binary):
    """y = a / b: dy/da = 1 / b, dy/db = -a / b^2 = -y / b."""

    op = "div"

    def compute(self, a, b):
        if a.dtype.kind != "f":  # true division of integers gives PyTorch's default float, float32
            a, b = a.astype(np.float32), b.astype(np.float32)
        y = a / b
        self.b = b
        self.y = y if self.needs_input_grad[1] else None
        return y

    def backward(self, gy):
        ga = gy / self.b
        return self.reduce(ga, -ga * self.y if self.y is not None else None)


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class PowScalar(Function):
    """y = x ** c for a constant exponent c: dy/dx = c x^(c-1) (0 when c = 0, as PyTorch)."""

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        self.x = x
        return x ** self.c

    def backward(self, gy):
        c = self.c
        if c == 0:
            return self.xp.zeros_like(gy)
        return gy * (c * self.x ** (c - 1))


class Pow(_Binary):
    """y = a ** b with both sides differentiable: dy/da = b a^(b-1), dy/db = a^b log a."""

    op = "pow"

    def compute(self, a, b):
        self.a, self.b = a, b
        self.y = a ** b
        return self.y

    def backward(self, gy):
        a, b, xp = self.a, self.b, self.xp
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = gy * xp.where(b == 0, 0, b * a ** (b - 1))  # 0 where b == 0, as PyTorch
        if self.needs_input_grad[1]:
            # a^b log a -> 0 where a == 0 (the limit for b > 0), as PyTorch
            gb = gy * self.y * xp.log(xp.where(a > 0, a, 1))
        return self.reduce(ga, gb)


class MatMul(Function):
    """Batched matrix product with NumPy's rules (1-D operands are promoted and squeezed).

    For 2-D a (n, k), b (k, m): dL/da = g b^T, dL/db = a^T g; batch dimensions that
    were broadcast are summed back.
    """

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes {a.shape} and {b.shape}")
        k_a = a.shape[-1]
        k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if k_a != k_b:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align: "
                             f"the last dim of the first ({k_a}) must equal the "
                             f"{'only' if b.ndim == 1 else 'second to last'} dim of the second ({k_b})")
        self.a_meta, self.b_meta = (a.shape, a.dtype), (b.shape, b.dtype)
        self.a = a if self.needs_input_grad[1] else None
        self.b = b if self.needs_input_grad[0] else None
        try:
            return a @ b
        except ValueError:
            raise ValueError(f"matmul: the batch dimensions of shapes {a.shape} and {b.shape} "
                             f"({a.shape[:-2]} and {b.shape[:-2]}) cannot be broadcast together") from None

    def backward(self, gy):
        xp = self.xp
        (a_shape, a_dtype), (b_shape, b_dtype) = self.a_meta, self.b_meta
        # promote 1-D operands to matrices: a (k,) -> (1, k), b (k,) -> (k, 1)
        g2 = gy
        if len(b_shape) == 1:
            g2 = g2[..., None]  # (..., n) -> (..., n, 1)
        if len(a_shape) == 1:
            g2 = g2[..., None, :]  # (..., m) -> (..., 1, m)
        ga = gb = None
        if self.needs_input_grad[0]:
            b2 = self.b[:, None] if self.b.ndim == 1 else self.b
            a2_shape = (1,) + a_shape if len(a_shape) == 1 else a_shape
            ga = unbroadcast(g2 @ xp.swapaxes(b2, -1, -2), a2_shape, a_dtype).reshape(a_shape)
        if self.needs_input_grad[1]:
            a2 = self.a[None, :] if self.a.ndim == 1 else self.a
            b2_shape = b_shape + (1,) if len(b_shape) == 1 else b_shape
            gb = unbroadcast(xp.swapaxes(a2, -1, -2) @ g2, b2_shape, b_dtype).reshape(b_shape)
        return ga, gb


def add(a, b, alpha=1):
    """a + alpha * b."""
    return Add().apply(a, b if alpha == 1 else b * alpha)


def sub(a, b, alpha=1):
    """a - alpha * b."""
    return Sub().apply(a, b if alpha == 1 else b * alpha)


class Maximum(_Binary):
    """y = max(a, b) element-wise (NaN wins, as PyTorch); the gradient goes to the larger, half
    to each where they tie."""

    op = "maximum"

    def compute(self, a, b):
        xp = backend.array_module(a)
        self.a_wins, self.tie = (a > b if self.op == "maximum" else a < b), a == b
        return xp.maximum(a, b) if self.op == "maximum" else xp.minimum(a, b)

    def backward(self, gy):
        half = 0.5 * gy * self.tie
        return self.reduce(gy * self.a_wins + half, gy * ~(self.a_wins | self.tie) + half)


class Minimum(Maximum):
    """y = min(a, b) element-wise; as ``Maximum`` the other way round."""

    op = "minimum"


def maximum(a, b):
    return Maximum().apply(a, b)


def minimum(a, b):
    return Minimum().apply(a, b)


def mul(a, b):
    return Mul().apply(a, b)


def div(a, b, rounding_mode=None):
    """a / b; ``rounding_mode`` "trunc" or "floor" rounds the quotient (no gradient then, as the
    rounded quotient is piecewise constant)."""
    if rounding_mode is None:
        return Div().apply(a, b)
    if rounding_mode not in ("trunc", "floor"):
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
    from ..tensor import Tensor, as_tensor

    a = as_tensor(a, like=b if isinstance(b, Tensor) else None)
    b = as_tensor(b, like=a)
    xp = backend.array_module(a.array)
    dtype = promote_types(a.dtype, b.dtype)
    q = a.array.astype(dtype) / b.array.astype(dtype) if dtype.kind == "f" else None
    if dtype.kind == "f":
        out = xp.trunc(q) if rounding_mode == "trunc" else xp.floor(q)
    else:
        out = a.array // b.array if rounding_mode == "floor" else xp.fix(a.array / b.array).astype(dtype)
    return Tensor._make(out.astype(dtype))


def neg(x):
    return Neg().apply(x)


def pow(a, b):
    """a ** b; a constant Python/NumPy number as exponent takes the cheaper ``PowScalar``."""
    from ..tensor import Tensor

    if isinstance(a, Tensor) and isinstance(b, numbers.Real) and not isinstance(b, bool):
        # a NumPy scalar exponent would promote float32 to float64; a Python number does not
        return PowScalar(b.item() if hasattr(b, "item") else b).apply(a)
    return Pow().apply(a, b)


def matmul(a, b):
    return MatMul().apply(a, b)
