"""Fully connected layer: y = x W^T + b."""
from ..autograd import Function


class Linear(Function):
    """y = x W^T + b for x (..., in), W (out, in), b (out,) -> y (..., out).

    dL/dx = g W, dL/dW = g^T x (rows of all leading dims together), dL/db = sum of g over rows.
    """

    def forward(self, x, w, b=None):
        self.x = x if self.needs_input_grad[1] else None
        self.w = w if self.needs_input_grad[0] else None
        y = x @ w.T
        if b is not None:
            y += b
        return y

    def backward(self, gy):
        g2 = gy.reshape(-1, gy.shape[-1])  # (rows, out)
        gx = (gy @ self.w) if self.needs_input_grad[0] else None
        gw = (g2.T @ self.x.reshape(-1, self.x.shape[-1])) if self.needs_input_grad[1] else None
        if len(self.needs_input_grad) == 2:
            return gx, gw
        gb = g2.sum(axis=0) if self.needs_input_grad[2] else None
        return gx, gw, gb


def linear(input, weight, bias=None):
    """y = input @ weight.T + bias; input (..., in), weight (out, in), bias (out,)."""
    if weight.ndim != 2 or input.ndim < 1 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {tuple(input.shape)} does not fit weight of shape "
                         f"{tuple(weight.shape)}: expected weight (out_features, {input.shape[-1] if input.ndim else '?'})")
    dtypes = {t.dtype for t in (input, weight, bias) if t is not None}
    if len(dtypes) > 1:
        raise TypeError(f"linear: input, weight and bias must share one dtype, got {sorted(map(str, dtypes))}")
    if bias is None:
        return Linear().apply(input, weight)
    if tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"linear: bias of shape {tuple(bias.shape)} does not fit weight of shape "
                         f"{tuple(weight.shape)}: expected ({weight.shape[0]},)")
    return Linear().apply(input, weight, bias)
