"""Dropout layers: active in training mode, the identity in eval mode."""
from ..ops.dropout import dropout, dropout2d
from .module import Module


class Dropout(Module):
    """Zero each value with probability p and scale the rest by 1 / (1 - p)."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()  # inplace is accepted for PyTorch compatibility; ops never mutate
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: dropout probability has to be between 0 and 1, but got {p}")
        self.p = p

    def forward(self, x):
        return dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Dropout2d(Dropout):
    """Zero whole channels of (N, C, H, W) with probability p (spatial dropout, as in ENet)."""

    def forward(self, x):
        return dropout2d(x, self.p, self.training)
