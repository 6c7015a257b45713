"""Fully connected layer: y = x W^T + b."""
from ..autograd import Function


class Linear(Function):
    def forward(self, x, w, b=None):
        # x (..., in), w (out, in), b (out,) -> y (..., out)
        if x.shape[-1] != w.shape[1]:
            raise ValueError(f"linear: input has {x.shape[-1]} features (shape {x.shape}) "
                             f"but the weight {w.shape} expects {w.shape[1]}")
        self.x, self.w = x, w
        y = x @ w.T
        if b is not None:
            y += b
        return y

    def backward(self, gy):
        x, w = self.x, self.w
        g2 = gy.reshape(-1, gy.shape[-1])  # (rows, out)
        gx = (gy @ w) if self.needs_input_grad[0] else None
        gw = (g2.T @ x.reshape(-1, x.shape[-1])) if self.needs_input_grad[1] else None
        if len(self.needs_input_grad) == 2:
            return gx, gw
        gb = g2.sum(axis=0) if self.needs_input_grad[2] else None
        return gx, gw, gb


def linear(input, weight, bias=None):
    if bias is None:
        return Linear().apply(input, weight)
    return Linear().apply(input, weight, bias)
